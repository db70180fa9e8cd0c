package quantize

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// mixedNet is x -> Conv(+bias) -> Relu -> Flatten -> MatMul -> Gemm(transB, +bias) -> y.
func mixedNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 6, 6)
	c := b.Node("Conv", "c", []string{x, b.weight("wc", 4, 3, 3, 3), b.weight("bc", 4)})
	r := b.Node("Relu", "r", []string{c})
	f := b.Node("Flatten", "f", []string{r})
	h := b.Node("MatMul", "h", []string{f, b.weight("wm", 64, 20)})
	y := b.Node("Gemm", "y", []string{h, b.weight("wg", 5, 20), b.weight("bg", 5)}, onnx.AttrInt("transB", 1), onnx.AttrFloat("alpha", 0.5))
	return b.Model(13, y)
}

func TestDynamicStructure(t *testing.T) {
	m := mixedNet(1)
	q, r, err := Quantize(context.Background(), m, Options{Method: Dynamic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DynamicQuantizeLinear", "ConvInteger", "Cast", "Mul", "Mul", "Add", // Conv, bias added in float
		"Relu", "Flatten",
		"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul", // MatMul
		"DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul", "Add", // Gemm, alpha in the scale
	}
	if diff := cmp.Diff(want, opTypes(q)); diff != "" {
		t.Errorf("node sequence (-want +got):\n%s", diff)
	}
	// Symmetric per-channel Conv weights: one zero point (ConvInteger takes
	// no other), scales shaped [M,1,1] for the Mul.
	if zp := initializer(t, q, "wc_zero_point"); len(zp.Dims) != 0 {
		t.Errorf("ConvInteger weight zero point dims %v, want a scalar", zp.Dims)
	}
	if s := initializer(t, q, "wc_scale"); !cmp.Equal(s.Dims, []int64{4, 1, 1}) {
		t.Errorf("Conv weight scale dims %v, want [4 1 1]", s.Dims)
	}
	// The transB Gemm weight is stored transposed, [K, N].
	if w := initializer(t, q, "wg_quantized"); !cmp.Equal(w.Dims, []int64{20, 5}) || w.DType != onnx.Int8 {
		t.Errorf("Gemm weight %v %v, want INT8 [20 5]", w.DType, w.Dims)
	}
	if r.Activations != 3 || len(r.Quantized) != 3 {
		t.Errorf("report: %d activations, %d weights; want 3, 3", r.Activations, len(r.Quantized))
	}
	if got := floatReasons(r)["bc"]; got != ReasonBias {
		t.Errorf("Conv bias reason %q, want %q", got, ReasonBias)
	}
	kernels := optimizedOps(t, q)
	if kernels["ConvInteger"] != 1 || kernels["DynamicQuantizeMatMul"]+kernels["MatMulInteger"] != 2 {
		t.Errorf("optimized graph %v, want ConvInteger and two integer matrix products", kernels)
	}
	in := randomBatches(3, "x", 1, 2, 3, 6, 6)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.99 {
		t.Errorf("cosine to the float model %.4f, want >= 0.99", c)
	}
}

func TestDynamicAsymmetricConvIsPerTensor(t *testing.T) {
	q, r, err := Quantize(context.Background(), mixedNet(2), Options{Method: Dynamic, Symmetric: ptr(false)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := initializer(t, q, "wc_scale"); len(s.Dims) != 0 {
		t.Errorf("asymmetric Conv weight scale dims %v, want per-tensor (ConvInteger has one zero point)", s.Dims)
	}
	for _, w := range r.Quantized {
		if w.Name == "wm" && w.Granularity != "per-channel(axis 1)" {
			t.Errorf("MatMul weight granularity %q, want per-channel(axis 1)", w.Granularity)
		}
	}
	in := randomBatches(3, "x", 1, 2, 3, 6, 6)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, mixedNet(2), in)["y"]); c < 0.99 {
		t.Errorf("cosine to the float model %.4f, want >= 0.99", c)
	}
}
