package shard

import (
	"math"
	"testing"
)

func TestSamplesCoverTheDataInOrder(t *testing.T) {
	for _, n := range []int{16, 17, 100, 256, 1000} {
		for shards := 1; shards <= Units; shards *= 2 {
			next := 0
			for i := range shards {
				lo, hi := Samples(i, shards, n)
				if lo != next || hi <= lo {
					t.Fatalf("n=%d shards=%d: shard %d is [%d, %d), want it to start at %d and hold a sample", n, shards, i, lo, hi, next)
				}
				next = hi
			}
			if next != n {
				t.Errorf("n=%d shards=%d: the shards end at %d", n, shards, next)
			}
		}
	}
}

func TestValid(t *testing.T) {
	var got []int
	for s := -1; s <= 2*Units; s++ {
		if Valid(s) {
			got = append(got, s)
		}
	}
	if len(got) != 5 || got[0] != 1 || got[4] != 16 {
		t.Errorf("valid shard counts %v, want 1 2 4 8 16", got)
	}
}

// TestTreeSumOfShardsIsTheWholeSum sums numbers whose float64 sum depends
// on the order of the additions: the shards' partial sums, merged by the
// same tree, give the one-pod sum bit for bit, where adding the shards'
// sums one after the other does not.
func TestTreeSumOfShardsIsTheWholeSum(t *testing.T) {
	units := make([]float64, Units)
	for i := range units {
		units[i] = math.Ldexp(1+float64(i)/7, (i*37)%60-30) * float64(1-2*(i%3%2))
	}
	add := func(a, b float64) float64 { return a + b }
	whole, _ := TreeSum(Units, func(u int) (float64, error) { return units[u], nil }, add)
	differs := false
	for shards := 1; shards <= Units; shards *= 2 {
		parts := make([]float64, shards)
		for i := range shards {
			lo, hi := OfUnits(i, shards)
			parts[i], _ = TreeSum(hi-lo, func(u int) (float64, error) { return units[lo+u], nil }, add)
		}
		merged, _ := TreeSum(shards, func(i int) (float64, error) { return parts[i], nil }, add)
		if merged != whole {
			t.Errorf("%d shards: merged %v, one pod %v", shards, merged, whole)
		}
		seq := 0.0
		for _, p := range parts {
			seq += p
		}
		differs = differs || seq != whole
	}
	if !differs {
		t.Fatal("the numbers sum the same in any order: the test cannot tell a tree from a fold")
	}
}
