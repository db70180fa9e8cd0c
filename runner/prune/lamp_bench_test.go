package prune

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkMagnitudeGlobal prunes twelve layers of a million weights to
// 50% with LAMP scores (make bench-runner times the whole step).
func BenchmarkMagnitudeGlobal(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := make([][]float32, 12)
	for i := range src {
		src[i] = make([]float32, 1<<20)
		for j := range src[i] {
			src[i][j] = float32(rng.NormFloat64())
		}
	}
	vals := make([][]float32, len(src))
	for i := range vals {
		vals[i] = make([]float32, len(src[i]))
	}
	for b.Loop() {
		for i := range vals {
			copy(vals[i], src[i])
		}
		magnitude(vals, &options{scope: ScopeGlobal, sparsity: 0.5}, func(int) {})
	}
}
