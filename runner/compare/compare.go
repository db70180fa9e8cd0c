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

// MaxSNRDb bounds SNRDb: outputs that are identical (no noise at all)
// measure MaxSNRDb, outputs that are all noise (a zero reference)
// -MaxSNRDb, so the figure is always a number a gate can compare.
const MaxSNRDb = 200

// RelativeError is ‖got−ref‖/‖ref‖, summed in float64: 0 when both are
// zero, 1 when only ref is (the model answers where the reference is
// silent: counted as a whole error, not an infinite one).
func RelativeError(got, ref []float32) float64 {
	signal, noise := Energies(got, ref)
	return Ratio(signal, noise)
}

// Energies are Σref² (the signal) and Σ(got−ref)² (the noise), summed in
// float64 in index order: sums of several batches add up.
func Energies(got, ref []float32) (signal, noise float64) {
	for i := range ref {
		r := float64(ref[i])
		d := float64(got[i]) - r
		signal += r * r
		noise += d * d
	}
	return signal, noise
}

// Ratio is √(noise/signal), the relative error of energies summed over
// several vectors: 0 when both are zero, 1 when only the signal is.
func Ratio(signal, noise float64) float64 {
	switch {
	case noise == 0:
		return 0
	case signal == 0:
		return 1
	}
	return math.Sqrt(noise / signal)
}

// SNRDb is 10·log10(signal/noise) in decibels, within ±MaxSNRDb.
func SNRDb(signal, noise float64) float64 {
	switch {
	case noise == 0:
		return MaxSNRDb
	case signal == 0:
		return -MaxSNRDb
	}
	return max(-MaxSNRDb, min(MaxSNRDb, 10*math.Log10(signal/noise)))
}

// MaxAbsError is the largest |got[i]−ref[i]| (0 for empty vectors).
func MaxAbsError(got, ref []float32) float64 {
	m := 0.0
	for i := range ref {
		m = max(m, math.Abs(float64(got[i])-float64(ref[i])))
	}
	return m
}

// Top1 counts the positions where got and ref have the same argmax: both
// hold len/classes positions of classes consecutive values (the last
// axis of the tensor they come from). It returns the matches and the
// positions.
func Top1(got, ref []float32, classes int) (agree, positions int) {
	if classes <= 0 {
		return 0, 0
	}
	positions = len(ref) / classes
	for p := range positions {
		lo, hi := p*classes, (p+1)*classes
		if Argmax(got[lo:hi]) == Argmax(ref[lo:hi]) {
			agree++
		}
	}
	return agree, positions
}

// Argmax is the index of the largest value (the first one on ties; 0 for
// an empty vector).
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
