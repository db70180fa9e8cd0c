package prune

import (
	"math"
	"sort"
)

// Selecting the k smallest of many values, with ties broken the same way
// on every run: by a pseudo-random order of element indices drawn from the
// seed, so that equal values are not always taken from the start of a
// tensor.

// tieKey orders element i among equal values for a seed (splitmix64).
func tieKey(seed int64, i int) uint64 {
	z := uint64(seed)*0x9e3779b97f4a7c15 + uint64(i) + 0x632be59bd9b4e8a5
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// absKey maps a float32 to a key whose unsigned order is the order of
// |v|: its bits with the sign cleared (NaN sorts above +Inf).
func absKey(v float32) uint32 { return math.Float32bits(v) &^ (1 << 31) }

// kthAbs returns the key of the k-th smallest |v| (1 <= k <= total) over
// the slices and how many values have a smaller key. It is a radix
// selection, two counting passes over 16 bits each: linear time and no
// copy, which matters for models with hundreds of millions of weights.
func kthAbs(slices [][]float32, k int) (kth uint32, below int) {
	hist := make([]int, 1<<16)
	for _, s := range slices {
		for _, v := range s {
			hist[absKey(v)>>16]++
		}
	}
	hi := 0
	for ; below+hist[hi] < k; hi++ {
		below += hist[hi]
	}
	return kthWithPrefix(slices, k, uint32(hi), below)
}

// kthWithPrefix is kthAbs's second pass: the k-th smallest key is known
// to have the top 16 bits hi, and below values have smaller top bits.
func kthWithPrefix(slices [][]float32, k int, hi uint32, below int) (kth uint32, belowKth int) {
	hist := make([]int, 1<<16)
	for _, s := range slices {
		for _, v := range s {
			if key := absKey(v); key>>16 == hi {
				hist[key&0xffff]++
			}
		}
	}
	lo := 0
	for ; below+hist[lo] < k; lo++ {
		below += hist[lo]
	}
	return hi<<16 | uint32(lo), below
}

// zeroSmallestAbs zeroes the k values of smallest magnitude over the
// slices (taken as one sequence for tie-breaking) and returns the largest
// magnitude zeroed.
func zeroSmallestAbs(slices [][]float32, k int, seed int64) float32 {
	if k <= 0 {
		return 0
	}
	kth, below := kthAbs(slices, k)
	return zeroUpTo(slices, k, kth, below, seed)
}

// zeroUpTo zeroes the values with keys below kth (below of them) and
// k - below of those equal to it, and returns the magnitude kth.
func zeroUpTo(slices [][]float32, k int, kth uint32, below int, seed int64) float32 {
	var ties []int // global indices of values at the threshold
	base := 0
	for _, s := range slices {
		for i, v := range s {
			key := absKey(v)
			if key == kth { // rare: predictable
				ties = append(ties, base+i)
			}
			// Zero v when key < kth without a branch (half the values
			// go, in random order): keys are below 2^31, so key - kth
			// is negative exactly then, and its sign fills the mask.
			drop := uint32(int32(key-kth) >> 31)
			s[i] = math.Float32frombits(math.Float32bits(v) &^ drop)
		}
		base += len(s)
	}
	// Only k - below of the values at the threshold go: the first ones in
	// the seed's order.
	need := k - below
	if need < len(ties) {
		sort.Slice(ties, func(a, b int) bool { return tieKey(seed, ties[a]) < tieKey(seed, ties[b]) })
		ties = ties[:need]
	}
	for _, g := range ties {
		base := 0
		for _, s := range slices {
			if g < base+len(s) {
				s[g-base] = 0
				break
			}
			base += len(s)
		}
	}
	return math.Float32frombits(kth)
}

// smallestScores returns the indices of the k smallest scores, ties broken
// by the seed's order of base+index.
func smallestScores(scores []float64, k int, seed int64, base int) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool {
		sa, sb := scores[idx[a]], scores[idx[b]]
		if sa != sb {
			return sa < sb
		}
		return tieKey(seed, base+idx[a]) < tieKey(seed, base+idx[b])
	})
	return idx[:k]
}

// smallestFew is smallestScores for a handful of scores (an N:M group):
// insertion sort into idx, a buffer of len(scores), without allocating.
func smallestFew(scores []float64, k int, seed int64, base int, idx []int) []int {
	less := func(a, b int) bool {
		if scores[a] != scores[b] {
			return scores[a] < scores[b]
		}
		return tieKey(seed, base+a) < tieKey(seed, base+b)
	}
	for i := range scores {
		idx[i] = i
		for j := i; j > 0 && less(idx[j], idx[j-1]); j-- {
			idx[j], idx[j-1] = idx[j-1], idx[j]
		}
	}
	return idx[:k]
}
