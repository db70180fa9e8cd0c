package prune

import (
	"cmp"
	"math"
	"runtime"
	"slices"
	"sort"
)

// Global magnitude pruning ranks the weights of all layers together. With
// raw |w| as the rank, layers whose weights are small as a whole — because
// a normalization after them scales their output up, or their inputs are
// large — lose almost everything: ppocr-det's outputs kept a cosine of
// 0.61 to the source at 50%. Scope global therefore ranks by LAMP scores
// (Lee et al., "Layer-adaptive Sparsity for the Magnitude-based Pruning",
// ICLR 2021). Sorting a layer's weights by |w| ascending, weight u scores
//
//	score(u) = w_u² / Σ_{v ≥ u} w_v²
//
// its share of the squared norm of the weights of its layer at least as
// large. The score does not change when a layer is scaled, so layers are
// compared by how much of their own output each weight carries, and it
// grows with |w| within a layer, so every layer still loses its smallest
// weights: LAMP only decides how many.
//
// Sorting every weight of a large model would cost more than the rest of
// pruning together, so lampCounts sorts only the weights whose scores can
// decide the threshold. Each layer's weights are binned by the top 16 bits
// of |w| (sign-cleared float32 bits: 2^-7 relative width) with the count
// and the sum of squares of each bin; since scores grow with |w|, every
// score of a bin lies between bounds known from those sums alone. Bins
// whose bounds fall wholly below or above the k-th smallest score are
// counted; only the few bins that straddle it are sorted and scored.

// smallLayer: layers with at most this many weights are binned by exact
// value (sorted) instead of by a 64K-bin histogram.
const smallLayer = 1 << 14

// lampBin is a range of |w| keys (absKey) of one layer.
type lampBin struct {
	lo, hi uint32 // inclusive
	count  int
	sumsq  float64
	// above is the sum of squares of the layer's weights in higher bins.
	above float64
}

// bounds returns the lowest and highest LAMP score a weight of the bin can
// have, widened by a relative 1e-9 for rounding: the smallest |w| over
// the whole bin and everything above, the largest |w| over itself and
// everything above.
func (b *lampBin) bounds() (float64, float64) {
	lo, hi := float64(math.Float32frombits(b.lo)), float64(math.Float32frombits(b.hi))
	l, u := 0.0, 0.0
	if d := b.above + b.sumsq; d > 0 {
		l = lo * lo / d
	}
	if d := b.above + hi*hi; d > 0 {
		u = hi * hi / d
	}
	return l * (1 - 1e-9), u * (1 + 1e-9)
}

// layerBins bins every layer's weights (see histogram.bins), layers in
// parallel.
func layerBins(vals [][]float32) [][]lampBin {
	bins := make([][]lampBin, len(vals))
	hists := make(chan *histogram, runtime.GOMAXPROCS(0))
	forEach(len(vals), func(i int) {
		var h *histogram
		select {
		case h = <-hists:
		default:
			h = newHistogram()
		}
		bins[i] = h.bins(vals[i])
		select {
		case hists <- h:
		default:
		}
	})
	return bins
}

// lampCounts returns how many weights each slice (a layer, binned by
// layerBins) loses when the k weights of smallest LAMP score over all of
// them go. Ties at the k-th score go in slice order.
func lampCounts(vals [][]float32, bins [][]lampBin, k int) []int {
	counts := make([]int, len(vals))
	if k <= 0 {
		return counts
	}
	t1, t2 := scoreBounds(bins, k)
	// Per layer, bins [from, to) straddle [t1, t2]: bounds grow with the
	// bin, so they are contiguous, and the bins before them score below
	// the threshold.
	type straddle struct{ from, to int }
	spans := make([]straddle, len(vals))
	below := 0
	for i, bs := range bins {
		from := sort.Search(len(bs), func(j int) bool { _, u := bs[j].bounds(); return u >= t1 })
		to := sort.Search(len(bs), func(j int) bool { l, _ := bs[j].bounds(); return l > t2 })
		spans[i] = straddle{from, max(from, to)}
		for _, b := range bs[:from] {
			counts[i] += b.count
		}
		below += counts[i]
	}
	// Score the straddling weights exactly.
	type scored struct {
		score float64
		layer int
	}
	var cands []scored
	var keys []uint32
	for i, v := range vals {
		s := spans[i]
		if s.from == s.to {
			continue
		}
		bs := bins[i]
		lo, hi := bs[s.from].lo, min(bs[s.to-1].hi, infKey-1)
		keys = keys[:0]
		for _, x := range v {
			if key := absKey(x); key-lo <= hi-lo {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		tail := bs[s.to-1].above
		for j := len(keys) - 1; j >= 0; j-- {
			w := float64(math.Float32frombits(keys[j]))
			tail += w * w
			score := 0.0
			if tail > 0 {
				score = w * w / tail
			}
			cands = append(cands, scored{score, i})
		}
	}
	need := max(0, min(k-below, len(cands))) // less only when most weights are NaN
	slices.SortFunc(cands, func(a, b scored) int {
		if c := cmp.Compare(a.score, b.score); c != 0 {
			return c
		}
		return a.layer - b.layer
	})
	for _, c := range cands[:need] {
		counts[c.layer]++
	}
	return counts
}

// scoreBounds returns t1 <= t2 between which the k-th smallest LAMP score
// lies: at least k weights score at most t2 (their bins' upper bounds are
// at most t2), and fewer than k can score below t1 (fewer than k lie in
// bins whose lower bound is below t1).
func scoreBounds(bins [][]lampBin, k int) (t1, t2 float64) {
	type bound struct {
		v     float64
		count int
	}
	var lows, highs []bound
	for _, bs := range bins {
		for i := range bs {
			l, u := bs[i].bounds()
			lows = append(lows, bound{l, bs[i].count})
			highs = append(highs, bound{u, bs[i].count})
		}
	}
	kth := func(bs []bound) float64 {
		slices.SortFunc(bs, func(a, b bound) int { return cmp.Compare(a.v, b.v) })
		n := 0
		for _, b := range bs {
			if n += b.count; n >= k {
				return b.v
			}
		}
		return math.Inf(1)
	}
	return kth(lows), kth(highs)
}

// kthFromBins is kthAbs for one layer whose bins are known: the bins'
// counts stand for the first counting pass.
func kthFromBins(v []float32, bins []lampBin, k int) (kth uint32, below int) {
	for _, b := range bins {
		if below+b.count < k {
			below += b.count
			continue
		}
		if b.lo == b.hi { // a bin of one value
			return b.lo, below
		}
		return kthWithPrefix([][]float32{v}, k, b.lo>>16, below)
	}
	return bins[len(bins)-1].hi, below
}

// histogram bins a layer's weights.
type histogram struct {
	counts []int32
	sumsq  []float64
}

func newHistogram() *histogram {
	return &histogram{counts: make([]int32, 1<<16), sumsq: make([]float64, 1<<16)}
}

// infKey is absKey(+Inf); NaN keys are above it.
const infKey = 0x7f800000

// bins returns the layer's nonempty bins in ascending order of |w|: one
// per top-16-bit key prefix, or one per distinct value for small layers.
// Infinite and NaN weights are left out: they have no share of a norm,
// and, sorting above every finite key, they are never among the weights
// a layer loses.
func (h *histogram) bins(v []float32) []lampBin {
	var bins []lampBin
	if len(v) <= smallLayer {
		keys := make([]uint32, 0, len(v))
		for _, x := range v {
			if key := absKey(x); key < infKey {
				keys = append(keys, key)
			}
		}
		slices.Sort(keys)
		for _, key := range keys {
			w := float64(math.Float32frombits(key))
			if n := len(bins); n > 0 && bins[n-1].lo == key {
				bins[n-1].count++
				bins[n-1].sumsq += w * w
				continue
			}
			bins = append(bins, lampBin{lo: key, hi: key, count: 1, sumsq: w * w})
		}
	} else {
		for _, x := range v {
			key := absKey(x)
			w := float64(x)
			h.counts[key>>16]++
			h.sumsq[key>>16] += w * w
		}
		for p, c := range h.counts[:infKey>>16] {
			if c > 0 {
				bins = append(bins, lampBin{lo: uint32(p) << 16, hi: uint32(p)<<16 | 0xffff, count: int(c), sumsq: h.sumsq[p]})
			}
		}
		clear(h.counts)
		clear(h.sumsq)
	}
	above := 0.0
	for i := len(bins) - 1; i >= 0; i-- {
		bins[i].above = above
		above += bins[i].sumsq
	}
	return bins
}
