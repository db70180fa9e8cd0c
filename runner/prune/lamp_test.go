package prune

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// bruteLAMP sorts each layer's |w| and returns the LAMP score of every
// weight in ascending order of |w|.
func bruteLAMP(vals [][]float32) [][]float64 {
	scores := make([][]float64, len(vals))
	for i, v := range vals {
		abs := make([]float64, 0, len(v))
		for _, x := range v {
			if a := math.Abs(float64(x)); !math.IsInf(a, 0) && !math.IsNaN(a) {
				abs = append(abs, a)
			}
		}
		slices.Sort(abs)
		s := make([]float64, len(abs))
		tail := 0.0
		for j := len(abs) - 1; j >= 0; j-- {
			tail += abs[j] * abs[j]
			if tail > 0 {
				s[j] = abs[j] * abs[j] / tail
			}
		}
		scores[i] = s
	}
	return scores
}

// TestLAMPCounts checks lampCounts against scoring every weight: the
// counts add up to k, and no weight removed scores above a weight kept.
// Layers are large enough to be binned by histogram (bins straddling the
// threshold are then scored exactly) or small (binned by value), scaled
// differently, with ties, zeros and non-finite values.
func TestLAMPCounts(t *testing.T) {
	rng := newRand(7)
	normal := func(n int, scale float64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(scale * rng.NormFloat64())
		}
		return v
	}
	ties := normal(3000, 1)
	for i := range ties {
		ties[i] = float32(math.Round(float64(ties[i])*4) / 4) // many equal values
	}
	zeros := normal(smallLayer+500, 0.01)
	for i := 0; i < len(zeros); i += 3 {
		zeros[i] = 0
	}
	nonFinite := normal(600, 2)
	nonFinite[3], nonFinite[5] = float32(math.Inf(1)), float32(math.NaN())
	cases := map[string][][]float32{
		"one large layer":            {normal(100000, 1)},
		"large layers, scales apart": {normal(70000, 1), normal(50000, 0.01), normal(90000, 30)},
		"large and small layers":     {normal(200, 5), normal(40000, 0.1), normal(9, 1), normal(smallLayer, 2)},
		"ties, zeros and non-finite": {ties, zeros, nonFinite, make([]float32, 50)},
	}
	for name, vals := range cases {
		total := 0
		for _, v := range vals {
			total += len(v)
		}
		want := bruteLAMP(vals)
		for _, frac := range []float64{0.001, 0.3, 0.5, 0.9} {
			t.Run(fmt.Sprintf("%s %.3g", name, frac), func(t *testing.T) {
				k := removed(total, frac)
				counts := lampCounts(vals, layerBins(vals), k)
				sum := 0
				maxRemoved, minKept := 0.0, math.Inf(1)
				for i, c := range counts {
					sum += c
					if c > 0 {
						maxRemoved = max(maxRemoved, want[i][c-1])
					}
					if c < len(want[i]) {
						minKept = min(minKept, want[i][c])
					}
				}
				if sum != k {
					t.Errorf("counts %v add up to %d, want %d", counts, sum, k)
				}
				if maxRemoved > minKept*(1+1e-9) {
					t.Errorf("counts %v remove a weight of score %g and keep one of %g", counts, maxRemoved, minKept)
				}
			})
		}
	}
}

// TestKthFromBins checks the selection that reuses a layer's bins against
// kthAbs, on a large (histogram-binned) and a small (value-binned) layer.
func TestKthFromBins(t *testing.T) {
	rng := newRand(11)
	for _, n := range []int{smallLayer / 2, 3 * smallLayer} {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
			if i%5 == 0 {
				v[i] = 0.5 // ties
			}
		}
		bins := newHistogram().bins(v)
		for _, k := range []int{1, n / 5, n / 2, n - 1, n} {
			kth, below := kthFromBins(v, bins, k)
			wantKth, wantBelow := kthAbs([][]float32{v}, k)
			if kth != wantKth || below != wantBelow {
				t.Errorf("n=%d k=%d: key %x with %d below, want %x with %d", n, k, kth, below, wantKth, wantBelow)
			}
		}
	}
}
