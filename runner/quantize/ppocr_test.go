package quantize

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// textImages makes n synthetic 3x320x320 images, normalized as PaddleOCR
// feeds them: a light background with dark strokes (text-like bars) and
// noise.
func textImages(seed uint64, n int) []*onnx.Tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	const h, w = 320, 320
	var out []*onnx.Tensor
	for range n {
		img := make([]float32, 3*h*w)
		for i := range h * w {
			img[i] = 0.9 + 0.1*float32(r.Float64())
		}
		for range 12 { // strokes
			y0, x0 := r.IntN(h-20), r.IntN(w-120)
			bh, bw := 6+r.IntN(14), 30+r.IntN(90)
			for y := y0; y < y0+bh; y++ {
				for x := x0; x < x0+bw; x++ {
					if r.IntN(4) != 0 {
						img[y*w+x] = 0.1 * float32(r.Float64())
					}
				}
			}
		}
		mean := []float32{0.485, 0.456, 0.406}
		std := []float32{0.229, 0.224, 0.225}
		data := make([]float32, 3*h*w)
		for c := range 3 {
			for i := range h * w {
				data[c*h*w+i] = (img[i] - mean[c]) / std[c]
			}
		}
		out = append(out, onnx.NewTensor([]int64{1, 3, h, w}, data))
	}
	return out
}

func TestPPOCRDet(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	if testing.Short() {
		t.Skip("runs a 4.7 MB detector on 320x320 images; skipped with -short")
	}
	info, err := os.Stat(onnxtest.ModelPath(onnxtest.PPOCRDet))
	if err != nil {
		t.Fatal(err)
	}
	m := onnxtest.Model(t, onnxtest.PPOCRDet)
	var calib []map[string]*onnx.Tensor
	for _, img := range textImages(1, 4) {
		calib = append(calib, map[string]*onnx.Tensor{"x": img})
	}
	eval := textImages(2, 2)
	// int4's guard keeps the weights whose 4-bit error costs the most at
	// 8 bits (every weight at 4 bits, symmetric blocks give cosines of
	// 0.49 and 0.65); asymmetric blocks fit this model's skewed kernels
	// far better than symmetric ones even without it.
	tests := []struct {
		name      string
		spec      Options
		minCosine float64
		maxRatio  float64
		integer   string
	}{
		{"static int8", Options{Method: Static}, 0.99, 0.3, "QLinearConv"},
		{"weight-only int4", Options{Method: WeightOnly, Bits: 4}, 0.98, 0.3, ""},
		{"weight-only int4 asymmetric, every weight at 4 bits", Options{Method: WeightOnly, Bits: 4, Symmetric: ptr(false), SensitiveLayers: SensitiveInt4}, 0.85, 0.2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, r, err := Quantize(context.Background(), m, tt.spec, NewBatches(calib...))
			if err != nil {
				t.Fatal(err)
			}
			b, err := q.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			ratio := float64(len(b)) / float64(info.Size())
			t.Logf("%s: %d -> %d bytes (%.3fx); %s", tt.name, info.Size(), len(b), ratio, r.Summary())
			if ratio > tt.maxRatio {
				t.Errorf("size ratio %.3f, want at most %.1f", ratio, tt.maxRatio)
			}
			if tt.integer != "" {
				// Static quantization keeps the Convs whose 8-bit outputs
				// would cost the most fidelity (those feeding HardSwish)
				// in float; a third or more still run on integers.
				k := optimizedOps(t, q)
				t.Logf("optimized graph: %d %s, %d float Conv; fidelity on calibration data %.4f", k[tt.integer], tt.integer, k["Conv"], r.Fidelity)
				if k[tt.integer] < 20 {
					t.Errorf("%d %s in the optimized graph, want at least 20 of the 62 Convs", k[tt.integer], tt.integer)
				}
			}
			for i, img := range eval {
				in := map[string]*onnx.Tensor{"x": img}
				c := cosine(t, run(t, q, in)["sigmoid_0.tmp_0"], run(t, m, in)["sigmoid_0.tmp_0"])
				t.Logf("image %d: output cosine %.4f", i, c)
				if c < tt.minCosine {
					t.Errorf("image %d: output cosine %.4f, want >= %v", i, c, tt.minCosine)
				}
			}
		})
	}
}
