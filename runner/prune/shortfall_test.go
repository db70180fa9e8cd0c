package prune

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// A result that leaves layer weights dense for reasons the options did not
// give (an embedding table here), or whose N:M groups leave weights dense,
// says so in its warnings; exclusions, biases and a share below 1% do not.
func TestShortfallWarnings(t *testing.T) {
	model := func(tableRows, out int64, in int64) *onnx.Model {
		b := newBuilder("shortfall")
		ids := b.InputOf("ids", onnx.Int64, 2)
		x := b.Node("Gather", "emb", []string{b.weight("table", tableRows, in), ids})
		y := b.Node("MatMul", "y", []string{x, b.weight("w", in, out)})
		return b.Model(13, b.Node("Add", "z", []string{y, b.weight("bias", out)}))
	}
	cases := []struct {
		name string
		m    *onnx.Model
		opts Options
		want []string
	}{
		{"embedding left dense", model(100, 64, 16), Options{Method: Magnitude, Sparsity: 0.5},
			[]string{"magnitude left 1 layer weights dense (1600 of 2624 weight elements, 61.0%), so 19.5% of the layer weights are zero, not the 50% asked: not the weight input of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU or RNN: table (Gather)"}},
		{"excluded", model(100, 64, 16), Options{Method: Magnitude, Sparsity: 0.5, ExcludeOpTypes: []string{"Gather"}}, nil},
		{"under 1%", model(1, 256, 16), Options{Method: Magnitude, Sparsity: 0.5}, nil},
		{"2:4 on 18 inputs", model(1, 256, 18), Options{Method: NM, Pattern: Pattern{N: 2, M: 4}},
			[]string{"pattern 2:4 left 512 weights dense (11.1% of the pruned layers'): the runs of input channels their groups take are not a multiple of 4 long"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rep := mustPrune(t, tc.m, tc.opts, nil)
			if diff := cmp.Diff(tc.want, rep.Warnings); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
		})
	}
}
