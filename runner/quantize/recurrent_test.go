package quantize

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// relativeError is ‖got−want‖/‖want‖ of one output, averaged over the
// samples (rows along dimension 0).
func relativeError(t testing.TB, want, got *onnx.Tensor) float64 {
	t.Helper()
	a, err := want.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	b, err := got.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	n := int(want.Dims[0])
	per := len(a) / n
	sum := 0.0
	for s := range n {
		sum += compare.RelativeError(b[s*per:(s+1)*per], a[s*per:(s+1)*per])
	}
	return sum / float64(n)
}

// TestRecurrentController quantizes a GRU and an LSTM controller (two and
// three inputs: the sequence and its states) with every method and checks
// what each does with the recurrent weights, that ONNX Runtime runs the
// result, and how far its outputs are from the float model's. The bounds
// hold on CPUs with and without VNNI: DynamicQuantizeLSTM's weights and
// those of the MatMuls reading signed inputs take a 7-bit range, so no
// u8s8 product saturates (asymmetric weights cannot: on AVX2 without VNNI
// their MatMuls lose 20%, the bound of that case).
func TestRecurrentController(t *testing.T) {
	orttest.Require(t)
	type want struct {
		// ops that must be in the quantized graph, and the recurrent
		// weights' fate.
		ops      []string
		rnnFloat Reason
		// maxRelErr bounds y's relative error.
		maxRelErr float64
	}
	cases := []struct {
		cell string
		spec Options
		want want
	}{
		{"GRU", Options{Method: Dynamic}, want{ops: []string{"GRU", "DequantizeLinear", "MatMulInteger"}, maxRelErr: 0.05}},
		{"LSTM", Options{Method: Dynamic}, want{ops: []string{"DynamicQuantizeLSTM", "MatMulInteger"}, maxRelErr: 0.05}},
		{"LSTM", Options{Method: Dynamic, Symmetric: ptr(false)}, want{ops: []string{"LSTM", "DequantizeLinear"}, maxRelErr: 0.3}},
		{"GRU", Options{Method: Static}, want{ops: []string{"GRU", "QuantizeLinear", "DequantizeLinear"}, maxRelErr: 0.05}},
		{"LSTM", Options{Method: Static}, want{ops: []string{"LSTM", "QuantizeLinear", "DequantizeLinear"}, maxRelErr: 0.05}},
		{"GRU", Options{Method: WeightOnly, Bits: 4}, want{ops: []string{"GRU", "DequantizeLinear", "Reshape"}, maxRelErr: 0.2}},
		{"LSTM", Options{Method: WeightOnly, Bits: 8}, want{ops: []string{"LSTM", "DequantizeLinear", "Reshape"}, maxRelErr: 0.02}},
		{"GRU", Options{Method: WeightOnly, Bits: 4, Format: MatMulNBits}, want{ops: []string{"GRU", "MatMulNBits"}, rnnFloat: ReasonUnsupportedOp, maxRelErr: 0.2}},
		{"LSTM", Options{Method: FP16}, want{ops: []string{"LSTM", "Cast"}, maxRelErr: 0.01}},
	}
	for _, tc := range cases {
		t.Run(tc.cell+"/"+specName(tc.spec)+map[bool]string{true: "-asymmetric"}[tc.spec.Symmetric != nil && !*tc.spec.Symmetric], func(t *testing.T) {
			cfg := modelgen.ControllerConfig{Cell: tc.cell, Seed: 3}
			m := modelgen.Controller(cfg)
			calib, err := modelData(t, m, modelgen.Sequences(cfg, 64, 20, 1)...).Batches(16)
			if err != nil {
				t.Fatal(err)
			}
			q, r, err := Quantize(context.Background(), m, tc.spec, calib)
			if err != nil {
				t.Fatal(err)
			}
			ops := map[string]bool{}
			for _, n := range q.Proto.GetGraph().GetNode() {
				ops[n.GetOpType()] = true
			}
			for _, op := range tc.want.ops {
				if !ops[op] {
					t.Errorf("no %s in the quantized graph %v", op, opTypes(q))
				}
			}
			quantized := map[string]bool{}
			for _, w := range r.Quantized {
				quantized[w.Name] = true
			}
			reasons := floatReasons(r)
			for _, w := range []string{"rnn.W", "rnn.R"} {
				switch {
				case tc.want.rnnFloat == "" && !quantized[w]:
					t.Errorf("%s not quantized: %q", w, reasons[w])
				case tc.want.rnnFloat != "" && reasons[w] != tc.want.rnnFloat:
					t.Errorf("%s: reason %q, want %q", w, reasons[w], tc.want.rnnFloat)
				}
			}
			if reasons["rnn.B"] == "" && !quantized["rnn.B"] {
				t.Errorf("rnn.B is neither quantized nor listed in float")
			}
			held := modelData(t, m, modelgen.Sequences(cfg, 16, 30, 2)...)
			in, err := held.Tensors(seq(16))
			if err != nil {
				t.Fatal(err)
			}
			want, got := run(t, m, in), run(t, q, in)
			e := relativeError(t, want[modelgen.ControllerY], got[modelgen.ControllerY])
			t.Logf("relative error of y %.4f", e)
			if e > tc.want.maxRelErr {
				t.Errorf("relative error of y %.4f, want <= %.2f", e, tc.want.maxRelErr)
			}
		})
	}
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// DynamicQuantizeLSTM computes what the float LSTM computes with the
// weights it was given: per direction and gate unit scales, 7-bit codes,
// transposed; a bidirectional LSTM keeps both directions apart.
func TestDynamicQuantizeLSTMWeights(t *testing.T) {
	orttest.Require(t)
	for _, perTensor := range []bool{false, true} {
		b := newBuilder(2)
		x := b.Input("x", 4, 2, 16)
		b.Node("LSTM", "y", []string{x, b.weight("w", 2, 32, 16), b.weight("r", 2, 32, 8), b.weight("b", 2, 64)},
			onnx.AttrInt("hidden_size", 8), onnx.AttrString("direction", "bidirectional"))
		m := b.Model(14, "y")
		q, r, err := Quantize(context.Background(), m, Options{Method: Dynamic, PerTensor: perTensor}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"DynamicQuantizeLSTM"}, opTypes(q)); diff != "" {
			t.Fatalf("nodes (-want +got):\n%s", diff)
		}
		scale := initializer(t, q, "w_scale")
		if diff := cmp.Diff([]int64{2, 32}, scale.Dims); diff != "" {
			t.Errorf("W scales' shape (-want +got):\n%s", diff)
		}
		s, _ := scale.Float32s()
		if distinct := len(slices.Compact(slices.Sorted(slices.Values(s)))); (distinct == 1) != perTensor {
			t.Errorf("per tensor %v: %d distinct scales", perTensor, distinct)
		}
		codes := initializer(t, q, "w_quantized")
		c := codes.Data.([]int8)
		if diff := cmp.Diff([]int64{2, 16, 32}, codes.Dims); diff != "" {
			t.Errorf("W codes' shape (-want +got):\n%s", diff)
		}
		if lo, hi := slices.Min(c), slices.Max(c); lo < -reducedMax || hi > reducedMax || (!perTensor && (lo != -reducedMax && hi != reducedMax)) {
			t.Errorf("codes in [%d, %d], want within ±%d and reaching it", lo, hi, reducedMax)
		}
		if r.Activations != 1 {
			t.Errorf("%d activations quantized at run time, want the LSTM's input", r.Activations)
		}
		in := randomBatches(5, "x", 1, 4, 2, 16)[0]
		if cos := cosine(t, run(t, m, in)["y"], run(t, q, in)["y"]); cos < 0.995 {
			t.Errorf("per tensor %v: cosine to the float LSTM %.4f, want >= 0.995", perTensor, cos)
		}
	}
}
