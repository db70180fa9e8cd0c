package quantize

import "math"

// Percentile chooses [-t, t] where t is the given percentile of |x|, then
// clips it to the values seen: ONNX Runtime's symmetric percentile
// calibration (HistogramCollector.collect_absolute_value and
// compute_percentile). One difference: the histogram starts at 0, where
// ONNX Runtime starts it at the smallest |x| of the first batch and then
// drops smaller values of later batches.
type Percentile struct {
	percentile float64
	bins       int
	tensors    map[string]*absHistogram
}

type absHistogram struct {
	h        *histogram
	min, max float32
}

// maxHistogramBins bounds how far a histogram grows when a later batch has
// a much larger range than the first: past it, bins are merged in pairs.
const maxHistogramBins = 1 << 16

// NewPercentile returns a collector for the given percentile (in [0, 100])
// of |x| over a histogram of bins bins.
func NewPercentile(percentile float64, bins int) *Percentile {
	return &Percentile{percentile: percentile, bins: bins, tensors: map[string]*absHistogram{}}
}

// Collect implements Collector.
func (p *Percentile) Collect(name string, data []float32) {
	lo, hi := finiteMinMax(data)
	amax := float64(max(-lo, hi))
	t, ok := p.tensors[name]
	switch {
	case !ok:
		t = &absHistogram{h: newHistogram(p.bins, 0, amax), min: lo, max: hi}
		p.tensors[name] = t
	case t.max == 0 && t.min == 0 && amax > 0:
		// Everything so far was 0: restart on a real range, keeping the
		// zeros in the first bin.
		zeros := t.h.total()
		t.h = newHistogram(p.bins, 0, amax)
		t.h.counts[0] = zeros
		t.min, t.max = min(t.min, lo), max(t.max, hi)
	default:
		t.min, t.max = min(t.min, lo), max(t.max, hi)
		t.h.growTo(amax)
	}
	for _, x := range data {
		if isFinite32(x) {
			t.h.add(math.Abs(float64(x)))
		}
	}
}

// growTo appends bins of the same width until hi covers amax, as
// collect_absolute_value does, merging bins in pairs if there get too many.
func (h *histogram) growTo(amax float64) {
	if amax <= h.hi {
		return
	}
	w := h.width()
	extra := int(math.Ceil((amax - h.hi) / w))
	for len(h.counts)+extra > maxHistogramBins {
		h.halve()
		w = h.width()
		extra = int(math.Ceil((amax - h.hi) / w))
	}
	h.counts = append(h.counts, make([]float64, extra)...)
	h.hi += float64(extra) * w
}

// halve merges bins in pairs (an odd last bin gets an empty partner).
func (h *histogram) halve() {
	w := h.width()
	n := (len(h.counts) + 1) / 2
	merged := make([]float64, n)
	for i, c := range h.counts {
		merged[i/2] += c
	}
	h.hi = h.lo + float64(n)*2*w
	h.counts = merged
}

// Ranges implements Collector.
func (p *Percentile) Ranges() map[string]Range {
	out := make(map[string]Range, len(p.tensors))
	for _, name := range sortedNames(p.tensors) {
		t := p.tensors[name]
		th := percentileEdge(t.h, p.percentile)
		out[name] = Range{Min: max(float32(-th), t.min), Max: min(float32(th), t.max)}
	}
	return out
}

// percentileEdge is the left edge of the first bin where the cumulative
// share reaches percentile/100 (numpy.searchsorted on the cdf), or the last
// edge if it never does.
func percentileEdge(h *histogram, percentile float64) float64 {
	total := h.total()
	if total == 0 {
		return 0
	}
	cdf := 0.0
	for i, c := range h.counts {
		cdf += c / total
		if cdf >= percentile/100 {
			return h.edge(i)
		}
	}
	return h.edge(len(h.counts))
}
