package quantize

import (
	"context"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestMobileNetInt4 is the target for a MobileNet-style
// classifier: int4 weight-only with the default guard (the weights whose
// 4-bit error costs the most fidelity stay at 8 bits; the depthwise
// kernels, 9 weights per channel, stay float) keeps the logits' cosine
// >= 0.95 at <= 0.40x the bytes, measured on other images than the guard
// calibrated on. Every weight at 4 bits is reported beside it.
func TestMobileNetInt4(t *testing.T) {
	orttest.Require(t)
	const res = 96
	m := modelgen.MobileNetV2(modelgen.MobileNetConfig{Width: 0.5, Resolution: res, Seed: 1})
	mb, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	in, err := modelData(t, m, modelgen.Images(8, res, 2)).Tensors(seq(8))
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, m, in)["logits"]
	calib, err := modelData(t, m, modelgen.Images(16, res, 1)).Batches(8)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		spec      Options
		minCosine float64
		maxRatio  float64
	}{
		{"int4, guarded", Options{Method: WeightOnly, Bits: 4}, 0.95, 0.40},
		{"int4, every weight at 4 bits", Options{Method: WeightOnly, Bits: 4, SensitiveLayers: SensitiveInt4}, 0, 0.40},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, r, err := Quantize(context.Background(), m, tc.spec, calib)
			if err != nil {
				t.Fatal(err)
			}
			qb, err := q.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			c, ratio := cosine(t, want, run(t, q, in)["logits"]), float64(len(qb))/float64(len(mb))
			t.Logf("logits cosine %.4f at %.3fx the bytes (%d -> %d); %d weights kept at 8 bits; %s", c, ratio, len(mb), len(qb), len(r.Sensitive), r.Summary())
			if c < tc.minCosine || ratio > tc.maxRatio {
				t.Errorf("cosine %.4f at %.3fx the bytes, want >= %.2f at <= %.2fx", c, ratio, tc.minCosine, tc.maxRatio)
			}
		})
	}
}
