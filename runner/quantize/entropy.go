package quantize

import "math"

// Entropy chooses the range whose 128-level quantization loses the least
// information: TensorRT's KL-divergence calibration as ONNX Runtime's
// calibrate.py implements it (HistogramCollector.collect_value,
// merge_histogram and get_entropy_threshold). Values are binned over
// [-t, t] (t the largest |x| so far); candidate ranges are windows of
// 2i+1 bins around the zero bin, and the one whose clipped distribution p
// and its 128-bin quantization q have the smallest KL(p || q) wins.
type Entropy struct {
	bins, quantized int
	tensors         map[string]*valueHistogram
}

type valueHistogram struct {
	h         *histogram
	min, max  float32
	threshold float64
}

// NewEntropy returns a collector with the given histogram and quantized bin
// counts (2048 and 128 in TensorRT).
func NewEntropy(bins, quantized int) *Entropy {
	return &Entropy{bins: bins, quantized: quantized, tensors: map[string]*valueHistogram{}}
}

// Collect implements Collector.
func (e *Entropy) Collect(name string, data []float32) {
	lo, hi := finiteMinMax(data)
	th := float64(max(-lo, hi))
	old, ok := e.tensors[name]
	if !ok {
		v := &valueHistogram{h: newHistogram(e.bins, -th, th), min: lo, max: hi, threshold: th}
		v.addAll(data)
		e.tensors[name] = v
		return
	}
	old.min, old.max = min(old.min, lo), max(old.max, hi)
	switch {
	case th <= old.threshold:
		old.addAll(data)
	case old.threshold == 0:
		// As merge_histogram: rebin on the new range and add the old counts
		// index by index.
		h := newHistogram(len(old.h.counts), -th, th)
		for i, c := range old.h.counts {
			h.counts[i] += c
		}
		old.h, old.threshold = h, th
		old.addAll(data)
	default:
		// Widen by whole bins of the old width on each side, so old bins
		// line up with new ones. A batch whose range dwarfs the first
		// one's (a first batch of near-zero activations) would need
		// billions of bins: past maxEntropyBins(e.bins), old bins are
		// merged first (where calibrate.py would run out of memory).
		n := len(old.h.counts)
		stride := 2 * old.threshold / float64(n)
		halfBins := math.Floor((th-old.threshold)/stride) + 1
		for float64(n)+2*halfBins > float64(maxEntropyBins(e.bins)) {
			old.coarsen()
			n = len(old.h.counts)
			stride = 2 * old.threshold / float64(n)
			halfBins = math.Floor((th-old.threshold)/stride) + 1
		}
		half := int(halfBins)
		newTh := float64(half)*stride + old.threshold
		h := newHistogram(n+2*half, -newTh, newTh)
		for i, c := range old.h.counts {
			h.counts[half+i] += c
		}
		old.h, old.threshold = h, newTh
		old.addAll(data)
	}
}

// maxEntropyBins bounds the histogram of a collector of the given bin
// count; it also bounds the threshold search, which is quadratic in bins.
func maxEntropyBins(bins int) int { return 8 * bins }

// coarsen merges bins in pairs, or in threes when their count is odd
// (after an empty bin on each side until it divides by 3), which keeps the
// histogram symmetric around 0.
func (v *valueHistogram) coarsen() {
	k := 2
	if len(v.h.counts)%2 == 1 {
		k = 3
		for len(v.h.counts)%3 != 0 {
			w := v.h.width()
			v.h.counts = append(append([]float64{0}, v.h.counts...), 0)
			v.h.lo, v.h.hi = v.h.lo-w, v.h.hi+w
			v.threshold += w
		}
	}
	merged := make([]float64, len(v.h.counts)/k)
	for i, c := range v.h.counts {
		merged[i/k] += c
	}
	v.h.counts = merged
}

func (v *valueHistogram) addAll(data []float32) {
	for _, x := range data {
		if isFinite32(x) {
			v.h.add(float64(x))
		}
	}
}

// Ranges implements Collector.
func (e *Entropy) Ranges() map[string]Range {
	out := make(map[string]Range, len(e.tensors))
	for _, name := range sortedNames(e.tensors) {
		v := e.tensors[name]
		lo, hi := entropyThreshold(v.h, e.quantized)
		out[name] = Range{Min: max(float32(lo), v.min), Max: min(float32(hi), v.max)}
	}
	return out
}

// entropyThreshold returns the edges of the window with the smallest KL
// divergence, following get_entropy_threshold step by step (including its
// integer-valued expanded q).
func entropyThreshold(h *histogram, quantized int) (lo, hi float64) {
	hist := h.counts
	n := len(hist)
	zero := n / 2
	halfQ := quantized / 2
	if zero < halfQ {
		// Fewer bins than quantization levels: nothing is clipped.
		return h.edge(0), h.edge(n)
	}
	best := math.Inf(1)
	lo, hi = h.edge(0), h.edge(n)
	p := make([]float64, n)
	q := make([]float64, n)
	for i := halfQ; i <= zero; i++ {
		start := zero - i
		end := min(zero+i+1, n)
		sliced := hist[start:end]
		size := len(sliced)
		p = p[:size]
		copy(p, sliced)
		for _, c := range hist[:start] {
			p[0] += c
		}
		for _, c := range hist[end:] {
			p[size-1] += c
		}
		merged := size / quantized
		q = q[:size]
		for j := range q {
			q[j] = 0
		}
		for b := range quantized {
			first, last := b*merged, (b+1)*merged
			sum := 0.0
			for _, c := range sliced[first:last] {
				sum += c
			}
			if b == quantized-1 {
				for _, c := range sliced[quantized*merged:] {
					sum += c
				}
			}
			nonzero := 0
			for _, c := range p[first:last] {
				if c != 0 {
					nonzero++
				}
			}
			if nonzero != 0 {
				// calibrate.py stores the average into an int64 array:
				// the value is truncated and spread over the whole group.
				avg := math.Trunc(sum / float64(nonzero))
				for j := first; j < last; j++ {
					q[j] = avg
				}
			}
		}
		kl := klDivergence(p, q)
		if kl < best {
			best = kl
			lo, hi = h.edge(start), h.edge(end)
		}
	}
	return lo, hi
}

// klDivergence is scipy.stats.entropy(p, q) after calibrate.py's
// smooth_distribution of both: zeros become eps, taken evenly off the
// non-zero entries; an all-zero distribution gives +Inf.
func klDivergence(p, q []float64) float64 {
	ps, ok1 := smooth(p)
	qs, ok2 := smooth(q)
	if !ok1 || !ok2 {
		return math.Inf(1)
	}
	sp, sq := 0.0, 0.0
	for i := range ps {
		sp += ps[i]
		sq += qs[i]
	}
	kl := 0.0
	for i := range ps {
		a, b := ps[i]/sp, qs[i]/sq
		if a > 0 {
			kl += a * math.Log(a/b)
		}
	}
	return kl
}

func smooth(p []float64) ([]float64, bool) {
	const eps = 0.0001
	zeros := 0
	for _, v := range p {
		if v == 0 {
			zeros++
		}
	}
	nonzeros := len(p) - zeros
	if nonzeros == 0 {
		return nil, false
	}
	eps1 := eps * float64(zeros) / float64(nonzeros)
	out := make([]float64, len(p))
	for i, v := range p {
		if v == 0 {
			out[i] = eps
		} else {
			out[i] = v - eps1
		}
		if out[i] <= 0 {
			// calibrate.py asserts here; a distribution this lopsided
			// cannot be compared.
			return nil, false
		}
	}
	return out, true
}
