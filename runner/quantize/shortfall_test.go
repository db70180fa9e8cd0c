package quantize

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// A result that leaves layer weights in float for reasons the options did
// not give says so in its warnings, with the share of the weights and the
// names; what the options excluded, biases, and a share below 1% do not.
func TestShortfallWarnings(t *testing.T) {
	model := func(tableRows, out int64) *onnx.Model {
		b := newBuilder(1)
		ids := b.InputOf("ids", onnx.Int64, 2)
		x := b.Node("Transpose", "xt", []string{b.Node("Gather", "emb", []string{b.weight("table", 16, tableRows), ids}, onnx.AttrInt("axis", 1))}, onnx.AttrInts("perm", 1, 0))
		y := b.Node("MatMul", "y", []string{x, b.weight("w", 16, out)})
		return b.Model(13, b.Node("Add", "z", []string{y, b.weight("bias", out)}))
	}
	cases := []struct {
		name string
		m    *onnx.Model
		spec Options
		want []string
	}{
		{"embedding left in float", model(100, 64), Options{Method: WeightOnly, Bits: 8},
			[]string{"weightOnly left 1 layer weights in float (1600 of 2624 weight elements, 61.0%): shape not supported by the quantized operator: table (Gather)"}},
		{"excluded", model(100, 64), Options{Method: WeightOnly, Bits: 8, ExcludeOpTypes: []string{"Gather"}}, nil},
		{"under 1%", model(1, 256), Options{Method: WeightOnly, Bits: 8}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, r, err := Quantize(context.Background(), tc.m, tc.spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, r.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
