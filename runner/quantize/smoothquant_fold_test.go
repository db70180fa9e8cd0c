package quantize

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// foldCase builds a graph reading x [rows, k] and returns its output.
type foldCase struct {
	name  string
	build func(b *modelgen.Builder, x string) string
	// into is where 1/s went per smoothed input (its first word);
	// skipped the reasons of the layers left alone.
	into, skipped []string
}

const foldK = 16

func linear(b *modelgen.Builder, x, name string) string {
	return b.Op("MatMul", []string{x, b.Param(name, modelgen.Laplace(0.2), foldK, 8)})
}

// Where SmoothQuant divides each input, and which layers it leaves
// alone, on small graphs; the migrated graph always computes what the
// original does (ONNX Runtime, to 1e-4 of the output's RMS).
func TestSmoothQuantFolds(t *testing.T) {
	orttest.Require(t)
	tests := []foldCase{
		{name: "layer norm read by the layer and a residual: inserted Mul",
			build: func(b *modelgen.Builder, x string) string {
				y := b.LayerNorm(x, foldK, "ln")
				return b.Op("Concat", []string{linear(b, y, "w"), y}, onnx.AttrInt("axis", -1))
			},
			into: []string{"inserted"}},
		{name: "Gemm transB after a layer norm: folded",
			build: func(b *modelgen.Builder, x string) string {
				w := b.Param("w", modelgen.Laplace(0.2), 8, foldK)
				return b.Op("Gemm", []string{b.LayerNorm(x, foldK, "ln"), w}, onnx.AttrInt("transB", 1))
			},
			into: []string{"LayerNormalization"}},
		{name: "two Muls by one shared scalar: each folded into its own copy",
			build: func(b *modelgen.Builder, x string) string {
				c := b.Scalar("half", 0.5)
				a := linear(b, b.Op("Mul", []string{x, c}), "w1")
				d := linear(b, b.Op("Mul", []string{b.Op("Relu", []string{x}), c}), "w2")
				return b.Op("Add", []string{a, d})
			},
			into: []string{"Mul", "Mul"}},
		{name: "two layers reading one input: one scale for both",
			build: func(b *modelgen.Builder, x string) string {
				y := b.LayerNorm(x, foldK, "ln")
				return b.Op("Add", []string{linear(b, y, "q"), linear(b, y, "k")})
			},
			into: []string{"LayerNormalization"}},
		{name: "one weight read by two layers, Gemm with transA: left alone",
			build: func(b *modelgen.Builder, x string) string {
				w := b.Param("w", modelgen.Laplace(0.2), foldK, 8)
				a := b.Op("Add", []string{b.Op("MatMul", []string{x, w}), b.Op("MatMul", []string{b.Op("Relu", []string{x}), w})})
				g := b.Op("Gemm", []string{b.Op("Transpose", []string{x}), b.Param("g", modelgen.Laplace(0.2), foldK, 8)}, onnx.AttrInt("transA", 1))
				return b.Op("Add", []string{a, g})
			},
			skipped: []string{"weight also read elsewhere: scaling it would change the other reader",
				"weight also read elsewhere: scaling it would change the other reader",
				"Gemm with transA: its input channels are not the last axis"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := modelgen.New("fold", 1)
			x := b.Input("x", onnx.Float, "rows", foldK)
			b.Output(tc.build(b, x), "y", onnx.Float, "rows", 8)
			m := b.Model(17)
			in := outlierRows(32)
			s := m.Clone()
			r, err := Smooth(context.Background(), s, SmoothQuantOptions{}, 32, NewBatches(in))
			if err != nil {
				t.Fatal(err)
			}
			var into, skipped []string
			for _, in := range r.Smoothed {
				into = append(into, firstWord(in.Into))
			}
			for _, sk := range r.Skipped {
				skipped = append(skipped, sk.Reason)
			}
			if diff := cmp.Diff(tc.into, into); diff != "" {
				t.Errorf("where 1/s went (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.skipped, skipped); diff != "" {
				t.Errorf("layers left alone (-want +got):\n%s", diff)
			}
			want, err := orttest.Run(t, m, in)["y"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			got, err := orttest.Run(t, s, in)["y"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			var worst, rms float64
			for i := range want {
				worst = max(worst, math.Abs(float64(got[i]-want[i])))
				rms += float64(want[i]) * float64(want[i]) / float64(len(want))
			}
			if worst > 1e-4*math.Sqrt(rms) {
				t.Errorf("largest difference %.3g on outputs of RMS %.3g: want the same function", worst, math.Sqrt(rms))
			}
		})
	}
}

// outlierRows is a batch x [rows, foldK] whose channel 3 is 50x the
// others.
func outlierRows(rows int) map[string]*onnx.Tensor {
	r := rand.New(rand.NewPCG(1, 5))
	v := make([]float32, rows*foldK)
	for i := range v {
		v[i] = float32(r.NormFloat64())
		if i%foldK == 3 {
			v[i] *= 50
		}
	}
	return map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{int64(rows), foldK}, v)}
}

func firstWord(s string) string {
	for i, c := range s {
		if c == ' ' {
			return s[:i]
		}
	}
	return s
}
