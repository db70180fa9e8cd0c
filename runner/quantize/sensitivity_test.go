package quantize

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// outlierNet is a small CNN whose first convolution carries one large
// weight per output channel on an input channel that is always zero (a
// padding channel), as trained first layers carry weights that matter
// little: 4-bit blocks scaled to it round the channel's other weights to
// zero, which destroys the model, while the other layers take 4 bits well.
func outlierNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 12, 12)
	x4 := b.Node("Pad", "x4", []string{x, b.Init("pads", onnx.NewTensor([]int64{8}, []int64{0, 0, 0, 0, 0, 1, 0, 0}))})
	w1 := b.randn(16 * 36)
	for c := range 16 {
		w1[c*36+3*9+4] = 100 // the zero channel's centre: in each row's first block
	}
	h := b.Node("Relu", "h", []string{b.Node("Conv", "c1", []string{x4, b.Init("w1", onnx.NewTensor([]int64{16, 4, 3, 3}, w1))},
		onnx.AttrInts("pads", 1, 1, 1, 1))})
	h = b.Node("Relu", "h2", []string{b.Node("Conv", "c2", []string{h, b.weight("w2", 16, 16, 3, 3)}, onnx.AttrInts("pads", 1, 1, 1, 1))})
	f := b.Node("Flatten", "f", []string{b.Node("GlobalAveragePool", "p", []string{h})})
	y := b.Node("Gemm", "y", []string{f, b.weight("w3", 10, 16), b.weight("b3", 10)}, onnx.AttrInt("transB", 1))
	return b.Model(13, y)
}

// TestSensitivityGuard: by default 4-bit weight-only (blocks with zero
// points: uint4, uint8) keeps the weight
// whose 4-bit error costs the most fidelity at 8 bits (or in float), the
// fewest that hold the output, reports it and warns; int4 quantizes it
// like the others and the model falls apart.
func TestSensitivityGuard(t *testing.T) {
	orttest.Require(t)
	calib := func() Calibration { return NewBatches(randomBatches(3, "x", 2, 8, 3, 12, 12)...) }
	held := randomBatches(9, "x", 1, 8, 3, 12, 12)[0]
	cases := []struct {
		name string
		spec Options
		// types of the stored weights ("float" when left), sensitive
		// weights, and the bounds of the output cosine on other samples
		// than the guard measured on.
		types     map[string]string
		sensitive []string
		minCos    float64
		maxCos    float64
	}{
		{"int8 (default)", Options{Method: WeightOnly, Bits: 4},
			map[string]string{"w1": "uint8", "w2": "uint4", "w3": "uint4"}, []string{"w1"}, 0.98, 1},
		{"float", Options{Method: WeightOnly, Bits: 4, SensitiveLayers: SensitiveFloat},
			map[string]string{"w1": "float", "w2": "uint4", "w3": "uint4"}, []string{"w1"}, 0.98, 1},
		{"int4: no guard", Options{Method: WeightOnly, Bits: 4, SensitiveLayers: SensitiveInt4},
			map[string]string{"w1": "uint4", "w2": "uint4", "w3": "uint4"}, nil, 0, 0.5},
		{"matmulnbits: the Gemm alone has 4-bit form", Options{Method: WeightOnly, Bits: 4, Format: MatMulNBits},
			map[string]string{"w1": "float", "w2": "float", "w3": "uint4"}, nil, 0.99, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := outlierNet(1)
			q, r, err := Quantize(context.Background(), m, tc.spec, calib())
			if err != nil {
				t.Fatal(err)
			}
			types := map[string]string{}
			for _, w := range r.Quantized {
				types[w.Name] = w.Type
			}
			for _, f := range r.Float {
				if f.Reason != ReasonBias {
					types[f.Name] = "float"
				}
			}
			if diff := cmp.Diff(tc.types, types); diff != "" {
				t.Errorf("weights' types (-want +got):\n%s", diff)
			}
			var sensitive []string
			for _, s := range r.Sensitive {
				sensitive = append(sensitive, s.Name)
			}
			if diff := cmp.Diff(tc.sensitive, sensitive); diff != "" {
				t.Errorf("sensitive weights (-want +got):\n%s", diff)
			}
			warned := len(r.Warnings) > 0 && strings.Contains(r.Warnings[0], "w1 (Conv, cosine")
			if warned != (len(tc.sensitive) > 0) {
				t.Errorf("warnings %q; want one naming w1: %v", r.Warnings, len(tc.sensitive) > 0)
			}
			if len(tc.sensitive) > 0 && (r.Fidelity < fidelityTarget || r.LowBitFidelity > 0.5 || r.CalibrationSamples != 16) {
				t.Errorf("report: fidelity %.4f, %.4f with every weight at 4 bits, %d samples; want >= %.2f, a destroyed model, 16",
					r.Fidelity, r.LowBitFidelity, r.CalibrationSamples, fidelityTarget)
			}
			c := cosine(t, run(t, q, held)["y"], run(t, m, held)["y"])
			t.Logf("held-out cosine %.4f (guard: %.4f, every weight at 4 bits %.4f)", c, r.Fidelity, r.LowBitFidelity)
			if c < tc.minCos || c > tc.maxCos {
				t.Errorf("held-out output cosine %.4f, want in [%.2f, %.2f]", c, tc.minCos, tc.maxCos)
			}
		})
	}
}

// Without calibration data the guard measures on synthesized inputs.
func TestSensitivityGuardSynthesizes(t *testing.T) {
	orttest.Require(t)
	_, r, err := Quantize(context.Background(), outlierNet(1), Options{Method: WeightOnly, Bits: 4}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.CalibrationSamples != guardSamples || len(r.Sensitive) == 0 || r.Sensitive[0].Name != "w1" {
		t.Errorf("%d samples, sensitive %+v; want %d synthesized samples and w1 first", r.CalibrationSamples, r.Sensitive, guardSamples)
	}
}
