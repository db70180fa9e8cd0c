package quantize

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/onnx"
)

// resizeNet is x -> Conv -> Resize (blocked for float16) -> Add(bias) -> y.
func resizeNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 8, 8)
	c := b.Node("Conv", "c", []string{x, b.weight("w", 4, 3, 3, 3)})
	scales := b.Init("scales", onnx.NewTensor([]int64{4}, []float32{1, 1, 2, 2}))
	r := b.Node("Resize", "r", []string{c, "", scales})
	y := b.Node("Add", "y", []string{r, b.weight("bias", 4, 1, 1)})
	m := b.Model(13, y)
	return m
}

func TestFP16(t *testing.T) {
	tests := []struct {
		io      v1alpha1.IOType
		ioType  onnx.DataType
		ops     []string
		castsTo []onnx.DataType
	}{
		{
			io: v1alpha1.IOFloat32, ioType: onnx.Float,
			ops:     []string{"Cast", "Conv", "Cast", "Resize", "Cast", "Add", "Cast"},
			castsTo: []onnx.DataType{onnx.Float16, onnx.Float, onnx.Float16, onnx.Float},
		},
		{
			io: v1alpha1.IOFloat16, ioType: onnx.Float16,
			ops:     []string{"Conv", "Cast", "Resize", "Cast", "Add"},
			castsTo: []onnx.DataType{onnx.Float, onnx.Float16},
		},
	}
	for _, tt := range tests {
		t.Run(string(tt.io), func(t *testing.T) {
			m := resizeNet(1)
			q, r, err := Quantize(context.Background(), m, v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeFP16, IOType: tt.io}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ops, opTypes(q)); diff != "" {
				t.Errorf("node sequence (-want +got):\n%s", diff)
			}
			var casts []onnx.DataType
			for _, n := range nodesOf(q, "Cast") {
				casts = append(casts, onnx.DataType(onnx.IntAttr(n, "to", 0)))
			}
			if diff := cmp.Diff(tt.castsTo, casts); diff != "" {
				t.Errorf("Cast targets (-want +got):\n%s", diff)
			}
			for _, name := range []string{"w", "bias"} {
				if w := initializer(t, q, name); w.DType != onnx.Float16 {
					t.Errorf("%s is %v, want FLOAT16", name, w.DType)
				}
			}
			// Resize's scales must stay float32.
			if s := initializer(t, q, "scales"); s.DType != onnx.Float {
				t.Errorf("scales is %v, want FLOAT", s.DType)
			}
			if got := floatReasons(r)["scales"]; got != ReasonFP16Blocked {
				t.Errorf("scales reason %q, want %q", got, ReasonFP16Blocked)
			}
			g := q.Proto.GetGraph()
			for _, vi := range append(g.GetInput(), g.GetOutput()...) {
				if dt := onnx.DataType(vi.GetType().GetTensorType().GetElemType()); dt != tt.ioType {
					t.Errorf("graph input/output %s is %v, want %v", vi.GetName(), dt, tt.ioType)
				}
			}
			in := randomBatches(2, "x", 1, 2, 3, 8, 8)[0]
			want := run(t, m, in)["y"]
			if tt.ioType == onnx.Float16 {
				x := in["x"].Data.([]float32)
				in = map[string]*onnx.Tensor{"x": onnx.NewTensor(in["x"].Dims, onnx.Float16s(x))}
			}
			if c := cosine(t, run(t, q, in)["y"], want); c < 0.999 {
				t.Errorf("cosine to the float32 model %.5f, want >= 0.999", c)
			}
		})
	}
}

func TestFP16KeepsZerosAndSaturates(t *testing.T) {
	got := toFloat16([]float32{0, 1e6, -1e6, 1.5, -0})
	want := []float32{0, 65504, -65504, 1.5, 0}
	if diff := cmp.Diff(want, onnx.Float32sFromFloat16(got)); diff != "" {
		t.Errorf("toFloat16 (-want +got):\n%s", diff)
	}
}
