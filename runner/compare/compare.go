// Package compare measures how far a model's outputs are from a
// reference's: the numbers fidelity gates, the static quantization search
// and structured pruning's checks are made of. One implementation each,
// so every stage and the evaluator agree on what "cosine 0.99" means.
package compare

import "math"

// Cosine is the cosine similarity of a and b (of equal length), summed in
// float64 in index order: two zero vectors are identical (1), a zero
// vector is unrelated to any other (0).
func Cosine(a, b []float32) float64 {
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	switch {
	case na == 0 && nb == 0:
		return 1
	case na == 0 || nb == 0:
		return 0
	}
	return dot / math.Sqrt(na*nb)
}
