package quantize

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// Rotary cos and sin caches (halves repeated, or GPT-J's interleaved
// pairs) are told from embeddings: a learned table, even one whose
// padding row 0 is zeros, or one in [-1, 1], is not a cache.
func TestRotaryCache(t *testing.T) {
	const positions, dim = 8, 6
	table := func(f func(p, i int) float64) *onnx.Tensor {
		v := make([]float32, positions*dim)
		for p := range positions {
			for i := range dim {
				v[p*dim+i] = float32(f(p, i))
			}
		}
		return onnx.NewTensor([]int64{positions, dim}, v)
	}
	freq := func(i int) float64 { return math.Pow(10000, -float64(2*i)/dim) }
	b := onnxtest.NewBuilder(1)
	tables := map[string]*onnx.Tensor{
		"cos":             table(func(p, i int) float64 { return math.Cos(float64(p) * freq(i%(dim/2))) }),
		"sin":             table(func(p, i int) float64 { return math.Sin(float64(p) * freq(i%(dim/2))) }),
		"sin_interleaved": table(func(p, i int) float64 { return math.Sin(float64(p) * freq(i/2)) }),
		"padded_embedding": table(func(p, i int) float64 {
			if p == 0 {
				return 0
			}
			return 0.1 * float64((p*7+i*3)%11-5)
		}),
		"small_embedding": table(func(p, i int) float64 { return math.Sin(float64(p*dim+i) * 0.7) }),
	}
	var names []string
	for name, v := range tables {
		names = append(names, b.Init(name, v))
	}
	ix := newIndex(b.Model(17, names...))
	got := map[string]bool{}
	for name := range tables {
		got[name] = rotaryCache(ix.consts[name])
	}
	want := map[string]bool{"cos": true, "sin": true, "sin_interleaved": true, "padded_embedding": false, "small_embedding": false}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("rotary caches (-want +got):\n%s", diff)
	}
}
