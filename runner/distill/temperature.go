package distill

import (
	"math"
)

// autoEntropy is the mean entropy, as a fraction of the largest possible
// (ln k), that temperature "auto" gives the teacher's softened outputs.
// A fixed T means nothing without the teacher's logit scale: mnist-8
// takes raw 0-255 pixels and its logits are in the thousands, so T=4
// leaves its targets one-hot, while a network with logits near 1 would
// be flattened to uniform. Fixing the entropy instead makes the targets
// equally informative whatever the scale: half the maximum keeps the
// teacher's top class clearly first while the ranking of the other
// classes (the "dark knowledge") carries real weight.
const autoEntropy = 0.5

// autoSamples bounds how many teacher rows choose the temperature.
const autoSamples = 4096

// autoTemperature finds T such that the mean entropy of softmax(t/T)
// over the teacher's logits (n rows of k) is autoEntropy·ln k. Entropy
// grows with T, so a bisection on log T finds it.
func autoTemperature(logits []float32, n, k int) float64 {
	step := max(1, n/autoSamples)
	rows := make([][]float32, 0, autoSamples)
	for r := 0; r < n; r += step {
		rows = append(rows, logits[r*k:(r+1)*k])
	}
	target := autoEntropy * math.Log(float64(k))
	lo, hi := math.Log(1e-6), math.Log(1e9)
	for i := 0; i < 100; i++ {
		mid := (lo + hi) / 2
		if meanEntropy(rows, math.Exp(mid)) < target {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Exp((lo + hi) / 2)
}

// meanEntropy is the mean entropy (nats) of softmax(row/t) over rows.
func meanEntropy(rows [][]float32, t float64) float64 {
	var sum float64
	ls := make([]float64, 0, 16)
	for _, r := range rows {
		if cap(ls) < len(r) {
			ls = make([]float64, len(r))
		}
		ls = ls[:len(r)]
		logSoftmaxRow(r, t, ls)
		for _, l := range ls {
			sum -= math.Exp(l) * l
		}
	}
	return sum / float64(len(rows))
}

// softenAll returns softmax(t/T) of every teacher row.
func softenAll(logits []float32, n, k int, t float64) []float32 {
	out := make([]float32, n*k)
	ls := make([]float64, k)
	for r := 0; r < n; r++ {
		logSoftmaxRow(logits[r*k:(r+1)*k], t, ls)
		for i, l := range ls {
			out[r*k+i] = float32(math.Exp(l))
		}
	}
	return out
}
