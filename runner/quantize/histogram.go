package quantize

import "math"

// histogram counts values in equal-width bins over [lo, hi], binning as
// numpy.histogram does: bins are half-open except the last, which includes
// hi; values outside [lo, hi] are not counted.
type histogram struct {
	counts []float64
	lo, hi float64
}

func newHistogram(bins int, lo, hi float64) *histogram {
	if lo == hi {
		// numpy widens an empty range by 0.5 on each side.
		lo, hi = lo-0.5, hi+0.5
	}
	return &histogram{counts: make([]float64, bins), lo: lo, hi: hi}
}

func (h *histogram) width() float64 { return (h.hi - h.lo) / float64(len(h.counts)) }

// edge returns the left edge of bin i (edge(len) is hi), as numpy.linspace.
func (h *histogram) edge(i int) float64 {
	n := len(h.counts)
	if i == n {
		return h.hi
	}
	return h.lo + float64(i)*(h.hi-h.lo)/float64(n)
}

// add counts x (already transformed, e.g. by abs) if it falls in range.
func (h *histogram) add(x float64) {
	if !(x >= h.lo && x <= h.hi) { // also drops NaN
		return
	}
	n := len(h.counts)
	i := int((x - h.lo) * float64(n) / (h.hi - h.lo))
	if i >= n {
		i = n - 1
	}
	// Correct for rounding at the edges, as numpy does.
	if x < h.edge(i) {
		i--
	} else if i < n-1 && x >= h.edge(i+1) {
		i++
	}
	h.counts[i]++
}

func (h *histogram) total() float64 {
	t := 0.0
	for _, c := range h.counts {
		t += c
	}
	return t
}

// isFinite32 reports whether x is neither NaN nor infinite.
func isFinite32(x float32) bool { return math.Float32bits(x)&expMask32 != expMask32 }

// expMask32 is a float32's exponent bits: all set is Inf or NaN.
const expMask32 = 0x7f800000
