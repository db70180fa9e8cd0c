package quantize

import (
	"context"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestTransformer quantizes a BERT-style encoder (input_ids,
// attention_mask, token_type_ids) with every method, static calibrated on
// token ids, and measures the last hidden state against the float
// model's on other samples. Every linear layer's weight and the three
// embedding tables are quantized (the attention's products of activations
// are not weights), so nothing is left to warn about but the layers the
// 4-bit guard keeps at 8 bits; the bounds
// hold with and without VNNI: the MatMuls read layer-normalized, signed
// inputs, whose weights take a 7-bit range.
func TestTransformer(t *testing.T) {
	orttest.Require(t)
	cfg := modelgen.SmallBERT
	m := modelgen.BERT(cfg)
	mb, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	held := modelData(t, m, modelgen.BERTTokens(cfg, 16, 32, 2)...)
	in, err := held.Tensors(seq(16))
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, m, in)[modelgen.LastHiddenState]
	cases := []struct {
		spec Options
		// kernels: the integer or low-bit kernels ONNX Runtime runs the
		// 12 linear layers on (Q, K and V share their input's dynamic
		// quantization: MatMulIntegerToFloat).
		kernels   []string
		minCosine float64
		maxRatio  float64
	}{
		{Options{Method: Dynamic}, []string{"DynamicQuantizeMatMul", "MatMulIntegerToFloat"}, 0.995, 0.35},
		{Options{Method: Static}, []string{"QLinearMatMul"}, 0.995, 0.35},
		{Options{Method: WeightOnly, Bits: 4, Format: MatMulNBits}, []string{"MatMulNBits"}, 0.99, 0.3},
		{Options{Method: WeightOnly, Bits: 4}, []string{"MatMulNBits"}, 0.99, 0.3}, // ONNX Runtime fuses DequantizeLinear + MatMul
		{Options{Method: FP16}, nil, 0.999, 0.55},
	}
	for _, tc := range cases {
		t.Run(specName(tc.spec), func(t *testing.T) {
			calib, err := modelData(t, m, modelgen.BERTTokens(cfg, 64, 32, 1)...).Batches(16)
			if err != nil {
				t.Fatal(err)
			}
			q, r, err := Quantize(context.Background(), m, tc.spec, calib)
			if err != nil {
				t.Fatal(err)
			}
			quantized := map[string]int{}
			for _, w := range r.Quantized {
				quantized[w.OpType]++
			}
			if quantized["MatMul"] != 12 || quantized["Gather"] != 3 {
				t.Errorf("%d MatMul and %d Gather weights quantized, want the 12 linear layers' and the 3 embeddings (%s)", quantized["MatMul"], quantized["Gather"], r.Summary())
			}
			if tc.kernels != nil {
				k, n := optimizedOps(t, q), 0
				for _, op := range tc.kernels {
					n += k[op]
				}
				if n < 12 {
					t.Errorf("ONNX Runtime runs %d %v, want the 12 linear layers on them: %v", n, tc.kernels, k)
				}
			}
			if len(r.Warnings) > 0 && len(r.Sensitive) == 0 {
				t.Errorf("warnings %q", r.Warnings)
			}
			qb, err := q.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			got := run(t, q, in)[modelgen.LastHiddenState]
			c, ratio := cosine(t, want, got), float64(len(qb))/float64(len(mb))
			t.Logf("last hidden state cosine %.5f, relative error %.4f, %.3fx the bytes; %s", c, relativeError(t, want, got), ratio, r.Summary())
			if c < tc.minCosine || ratio > tc.maxRatio {
				t.Errorf("cosine %.5f at %.3fx the bytes, want >= %.3f at <= %.2fx", c, ratio, tc.minCosine, tc.maxRatio)
			}
		})
	}
}
