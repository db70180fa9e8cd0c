package quantize

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// convNet is x -> Conv(+bias) -> Relu -> MaxPool -> Conv -> Flatten -> Gemm(transB, +bias) -> y.
func convNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 8, 8)
	c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", 8, 3, 3, 3), b.weight("b1", 8)}, onnx.AttrInts("pads", 1, 1, 1, 1))
	r1 := b.Node("Relu", "r1", []string{c1})
	p1 := b.Node("MaxPool", "p1", []string{r1}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("strides", 2, 2))
	c2 := b.Node("Conv", "c2", []string{p1, b.weight("w2", 16, 8, 3, 3)}, onnx.AttrInts("pads", 1, 1, 1, 1))
	f := b.Node("Flatten", "f", []string{c2})
	y := b.Node("Gemm", "y", []string{f, b.weight("w3", 10, 256), b.weight("b3", 10)}, onnx.AttrInt("transB", 1))
	return b.Model(13, y)
}

func TestStaticQDQStructure(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	m := convNet(1)
	q, r := fullyStatic(t, m, randomBatches(2, "x", 4, 2, 3, 8, 8))
	want := []string{
		"QuantizeLinear",                                                   // x
		"DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", // w1, b1, x
		"QuantizeLinear", "DequantizeLinear", "MaxPool", // Relu folded into the Conv's output
		"QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv", // w2, p1
		"QuantizeLinear", "DequantizeLinear", "Flatten",
		"QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "DequantizeLinear", "Gemm", // w3, b3, f; float output
	}
	if diff := cmp.Diff(want, opTypes(q)); diff != "" {
		t.Errorf("node sequence (-want +got):\n%s", diff)
	}
	// Every DequantizeLinear output has exactly one reader.
	readers := map[string]int{}
	for _, n := range q.Proto.GetGraph().GetNode() {
		for _, in := range n.GetInput() {
			readers[in]++
		}
	}
	for _, n := range nodesOf(q, "DequantizeLinear") {
		if got := readers[n.GetOutput()[0]]; got != 1 {
			t.Errorf("DequantizeLinear %s has %d readers, want 1", n.GetName(), got)
		}
	}
	// The first Conv writes the removed Relu's output.
	if got := nodesOf(q, "Conv")[0].GetOutput()[0]; got != "r1" {
		t.Errorf("first Conv writes %q, want r1 (the folded Relu's output)", got)
	}
	if r.RemovedNodes != 1 || r.Activations != 5 {
		t.Errorf("report: removed %d activations %d, want 1, 5", r.RemovedNodes, r.Activations)
	}

	// Weights are int8 per output channel, symmetric.
	w1 := initializer(t, q, "w1_quantized")
	if w1.DType != onnx.Int8 || !cmp.Equal(w1.Dims, []int64{8, 3, 3, 3}) {
		t.Errorf("w1_quantized is %v %v, want INT8 [8 3 3 3]", w1.DType, w1.Dims)
	}
	if zp := initializer(t, q, "w1_zero_point"); !cmp.Equal(zp.Data, make([]int8, 8)) {
		t.Errorf("w1 zero points %v, want eight int8 zeros", zp.Data)
	}
	// The bias is int32 with scale x_scale * w1_scale per channel.
	xs := initializer(t, q, "x_scale").Data.([]float32)[0]
	ws := initializer(t, q, "w1_scale").Data.([]float32)
	bs := initializer(t, q, "b1_scale").Data.([]float32)
	for c := range ws {
		if bs[c] != xs*ws[c] {
			t.Errorf("bias scale[%d] = %v, want x_scale*w_scale = %v", c, bs[c], xs*ws[c])
		}
	}
	if bq := initializer(t, q, "b1_quantized"); bq.DType != onnx.Int32 {
		t.Errorf("b1_quantized is %v, want INT32", bq.DType)
	}
	if zp := initializer(t, q, "x_zero_point"); zp.DType != onnx.Uint8 {
		t.Errorf("activation zero point is %v, want UINT8", zp.DType)
	}

	// ONNX Runtime fuses it all into integer kernels.
	kernels := optimizedOps(t, q)
	for op, want := range map[string]int{"QLinearConv": 2, "QGemm": 1, "Conv": 0, "Gemm": 0, "MaxPool": 0} {
		if kernels[op] != want {
			t.Errorf("optimized graph has %d %s, want %d (all: %v)", kernels[op], op, want, kernels)
		}
	}
	// And it computes what the float model does, executed as its QDQ
	// nodes say (integer kernels add the CPU's own error: see fullyStatic).
	in := randomBatches(9, "x", 1, 4, 3, 8, 8)[0]
	got, ref := runUnfused(t, q, in)["y"], run(t, m, in)["y"]
	if c := cosine(t, got, ref); c < 0.99 {
		t.Errorf("cosine to the float model %.4f, want >= 0.99", c)
	}

	// Through Quantize, the fidelity search measures the integer kernels
	// of this machine: it may compute nodes in float to keep the output
	// cosine at its target, and reports what it reached.
	full, fr, err := Quantize(context.Background(), m, Options{Method: Static}, NewBatches(randomBatches(2, "x", 4, 2, 3, 8, 8)...))
	if err != nil {
		t.Fatal(err)
	}
	if fr.CalibrationSamples != 8 || fr.Fidelity < fidelityTarget-fidelitySlack {
		t.Errorf("report: %d samples, fidelity %.4f; want 8 and at least %.3f", fr.CalibrationSamples, fr.Fidelity, fidelityTarget-fidelitySlack)
	}
	if c := cosine(t, run(t, full, in)["y"], ref); c < 0.98 {
		t.Errorf("Quantize's model: cosine to the float model %.4f on integer kernels, want >= 0.98", c)
	}
}

// fullyStatic is static quantization with every node on integers: the
// plan and the rewrite without the fidelity search, whose choices depend
// on the machine (AVX2 without VNNI saturates u8s8 products in ONNX
// Runtime's integer kernels; VNNI does not).
func fullyStatic(t *testing.T, m *onnx.Model, batches []map[string]*onnx.Tensor) (*onnx.Model, *Report) {
	t.Helper()
	o, err := Options{Method: Static}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	ix := newIndex(m)
	plan := planStatic(ix, o, weightSlots(ix, o, &Report{own: map[string]bool{}}, map[string]bool{}), &Report{own: map[string]bool{}}, nil)
	collector, err := NewCollector(o.calib)
	if err != nil {
		t.Fatal(err)
	}
	cal, err := calibrate(context.Background(), m, plan.roots(), NewBatches(batches...), collector, o.calib.Samples)
	if err != nil {
		t.Fatal(err)
	}
	q, r, err := buildStatic(m, o, cal.ranges, nil, &Report{Method: Static})
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

func TestStaticActivationTypeInt8(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	m := convNet(3)
	q, _, err := Quantize(context.Background(), m, Options{Method: Static, Activation: Int8},
		NewBatches(randomBatches(4, "x", 2, 2, 3, 8, 8)...))
	if err != nil {
		t.Fatal(err)
	}
	if zp := initializer(t, q, "x_zero_point"); zp.DType != onnx.Int8 {
		t.Errorf("activation zero point is %v, want INT8", zp.DType)
	}
	kernels := optimizedOps(t, q)
	if kernels["QLinearConv"] != 2 || kernels["QGemm"] != 1 {
		t.Errorf("optimized graph %v, want 2 QLinearConv and 1 QGemm", kernels)
	}
}

func TestStaticMatMulUsesQLinearMatMul(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	b := newBuilder(5)
	x := b.Input("x", "N", 16)
	h := b.Node("MatMul", "h", []string{x, b.weight("w1", 16, 32)})
	h = b.Node("Relu", "hr", []string{h})
	y := b.Node("MatMul", "y", []string{h, b.weight("w2", 32, 4)})
	m := b.Model(13, y)
	q, _, err := Quantize(context.Background(), m, Options{Method: Static},
		NewBatches(randomBatches(6, "x", 3, 8, 16)...))
	if err != nil {
		t.Fatal(err)
	}
	// Per-channel MatMul weights are quantized along the output axis (1).
	for _, n := range nodesOf(q, "DequantizeLinear") {
		if n.GetInput()[0] == "w1_quantized" && onnx.IntAttr(n, "axis", -1) != 1 {
			t.Errorf("w1 DequantizeLinear axis %d, want 1", onnx.IntAttr(n, "axis", -1))
		}
	}
	// The graph output y keeps its name, written by a DequantizeLinear.
	if last := q.Proto.GetGraph().GetNode()[len(q.Proto.GetGraph().GetNode())-1]; last.GetOpType() != "DequantizeLinear" || last.GetOutput()[0] != "y" {
		t.Errorf("last node %s writes %v, want the DequantizeLinear writing y", last.GetOpType(), last.GetOutput())
	}
	kernels := optimizedOps(t, q)
	if kernels["QLinearMatMul"] != 2 || kernels["MatMul"] != 0 {
		t.Errorf("optimized graph %v, want 2 QLinearMatMul and no float MatMul", kernels)
	}
	in := randomBatches(7, "x", 1, 5, 16)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.99 {
		t.Errorf("cosine to the float model %.4f, want >= 0.99", c)
	}
}

func TestStaticNeedsCalibrationData(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	_, _, err := Quantize(context.Background(), convNet(1), Options{Method: Static}, nil)
	if err == nil {
		t.Fatal("static quantization without calibration data succeeded")
	}
	_, _, err = Quantize(context.Background(), convNet(1), Options{Method: Static}, NewBatches())
	if err == nil {
		t.Fatal("static quantization with empty calibration data succeeded")
	}
	if errors.Is(err, ErrNoWeights) {
		t.Errorf("empty calibration reported as %v", err)
	}
}

// TestFewestInFloat checks the search for the fewest nodes in float on
// fidelity curves where the answer is known.
func TestFewestInFloat(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		fidelity func(k int) float64
		want     int
	}{
		{"all integer is enough", 10, func(int) float64 { return 0.995 }, 0},
		{"the target first met at 4 of 20", 20, func(k int) float64 { return 0.951 + 0.01*float64(k) }, 4},
		{"met only with every node in float", 7, func(k int) float64 { return 0.9 + 0.0125*float64(k) }, 7},
		// Every node in float gives 0.98 < 0.99: the target becomes
		// 0.98 - 0.005 = 0.975, first met at k = 7 (0.97625).
		{"below the target even in float", 8, func(k int) float64 { return 0.95 + 0.00375*float64(k) }, 7},
		{"no candidates", 0, func(int) float64 { return 0.5 }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, err := fewestInFloat(tt.n, func(k int) (*onnx.Model, *Report, error) {
				return nil, &Report{Fidelity: tt.fidelity(k), Activations: k}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if r.Activations != tt.want {
				t.Errorf("chose %d nodes in float (fidelity %.4f), want %d", r.Activations, r.Fidelity, tt.want)
			}
		})
	}
}
