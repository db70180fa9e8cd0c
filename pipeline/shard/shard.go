// Package shard is the arithmetic of data parallelism
// (spec.parallelism.shards) that the plan and the runner's algorithms
// share: which samples a shard reads and in what order partial statistics
// are combined. It imports nothing, so algorithm packages may use it.
//
// The samples of a data pass are cut into Units units whatever the shard
// count: unit u holds samples [u*n/Units, (u+1)*n/Units) of n. A statistic
// (a Hessian, a histogram, an evaluation sum) is accumulated per unit in
// sample order, and units are combined by TreeSum, a fixed binary tree
// over the Units units. Shard i of N (N a power of two up to Units) owns
// the aligned subtree of units [i*Units/N, (i+1)*Units/N), so a reduce
// that combines the shards' subtree sums with the same tree adds exactly
// the same floating-point numbers in exactly the same order as one pod
// does: the statistics, and so the model, are bit-identical for every
// shard count.
package shard

// Units is the number of units of every data pass, and the largest shard
// count (v1alpha1.MaxShards).
const Units = 16

// Valid reports whether shards is a shard count: a power of two from 1
// to Units.
func Valid(shards int) bool { return shards >= 1 && shards <= Units && shards&(shards-1) == 0 }

// UnitSamples returns the samples [lo, hi) of unit u of n samples.
func UnitSamples(u, n int) (lo, hi int) {
	return u * n / Units, (u + 1) * n / Units
}

// OfUnits returns the units [lo, hi) that shard i of shards owns.
func OfUnits(i, shards int) (lo, hi int) {
	per := Units / shards
	return i * per, (i + 1) * per
}

// Samples returns the samples [lo, hi) of n that shard i of shards reads:
// its units' samples.
func Samples(i, shards, n int) (lo, hi int) {
	ulo, uhi := OfUnits(i, shards)
	lo, _ = UnitSamples(ulo, n)
	_, hi = UnitSamples(uhi-1, n)
	return lo, hi
}

// TreeSum combines the n leaves (n a power of two) pairwise in a fixed
// binary tree: TreeSum(4) is add(add(l0, l1), add(l2, l3)), the left
// subtree computed first. An aligned power-of-two range of it is TreeSum
// of that range, which is what makes the shards' partial sums merge
// exactly.
func TreeSum[T any](n int, leaf func(i int) (T, error), add func(a, b T) T) (T, error) {
	return treeSum(0, n, leaf, add)
}

func treeSum[T any](lo, hi int, leaf func(i int) (T, error), add func(a, b T) T) (T, error) {
	if hi-lo == 1 {
		return leaf(lo)
	}
	mid := (lo + hi) / 2
	a, err := treeSum(lo, mid, leaf, add)
	if err != nil {
		return a, err
	}
	b, err := treeSum(mid, hi, leaf, add)
	if err != nil {
		return b, err
	}
	return add(a, b), nil
}
