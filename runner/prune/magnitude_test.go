package prune

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/panics"
)

func TestMagnitude(t *testing.T) {
	tests := []struct {
		name     string
		scope    Scope
		sparsity float64
		vals     [][]float32
		want     [][]float32
	}{{
		name: "layer: the three smallest |w| of six go", scope: ScopeLayer, sparsity: 0.5,
		vals: [][]float32{{0.5, -0.1, 0.3, -0.7, 0.2, 0.05}},
		want: [][]float32{{0.5, 0, 0.3, -0.7, 0, 0}},
	}, {
		name: "layer: each weight loses half", scope: ScopeLayer, sparsity: 0.5,
		vals: [][]float32{{1, -2, 3, 4}, {10, 20, -30, 40}},
		want: [][]float32{{0, 0, 3, 4}, {0, 0, -30, 40}},
	}, {
		// LAMP scores do not change when a layer is scaled: a layer ten
		// times smaller loses as much, where one raw threshold would take
		// all of it.
		name: "global: scaling a layer does not change its share", scope: ScopeGlobal, sparsity: 0.5,
		vals: [][]float32{{1, -2, 3, 4}, {10, 20, -30, 40}},
		want: [][]float32{{0, 0, 3, 4}, {0, 0, -30, 40}},
	}, {
		// Scores: first layer 1/5.34, 1.21/4.34, 1.44/3.13, 1; second
		// 4/10029, 9/10025, 16/10016, 1. The four smallest are the
		// second layer's three small weights, whose squares are a sliver
		// of its norm, and the first layer's smallest.
		name: "global: a layer whose norm is one weight loses the rest first", scope: ScopeGlobal, sparsity: 0.5,
		vals: [][]float32{{1, 1.1, -1.2, 1.3}, {2, -3, 4, 100}},
		want: [][]float32{{0, 1.1, -1.2, 1.3}, {0, 0, 0, 100}},
	}, {
		name: "layer: 2.5 of 5 rounds to 3, zeros count", scope: ScopeLayer, sparsity: 0.5,
		vals: [][]float32{{0, 9, -1, 8, 2}},
		want: [][]float32{{0, 9, 0, 8, 0}},
	}, {
		// Scores 0.25/110.25 and 0.0625/245.0625 are the two smallest.
		name: "global 0.25: the smallest weight of each layer", scope: ScopeGlobal, sparsity: 0.25,
		vals: [][]float32{{5, -0.5, 6, 7}, {0.25, 8, 9, 10}},
		want: [][]float32{{5, 0, 6, 7}, {0, 8, 9, 10}},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			done := 0
			magnitude(tc.vals, &options{scope: tc.scope, sparsity: tc.sparsity}, func(n int) { done = n })
			if diff := cmp.Diff(tc.want, tc.vals); diff != "" {
				t.Errorf("pruned (-want +got):\n%s", diff)
			}
			if done != len(tc.vals) {
				t.Errorf("progress reached %d of %d", done, len(tc.vals))
			}
		})
	}
}

// TestMagnitudeTies checks that values tied at the threshold go in an
// order the seed fixes: the same seed prunes the same ones, another seed
// others, and the count is exact either way.
func TestMagnitudeTies(t *testing.T) {
	prune := func(seed int64) []float32 {
		v := []float32{1, -1, 1, 1, -1, 1, 1, 1, 2, 2, 2, 2}
		zeroSmallestAbs([][]float32{v}, 5, seed)
		return v
	}
	zeros := func(v []float32) int {
		n := 0
		for _, x := range v {
			if x == 0 {
				n++
			}
		}
		return n
	}
	first := prune(1)
	if diff := cmp.Diff(first, prune(1)); diff != "" {
		t.Errorf("same seed, different masks (-first +second):\n%s", diff)
	}
	if zeros(first) != 5 {
		t.Errorf("%d zeros, want 5: %v", zeros(first), first)
	}
	for _, v := range first[8:] {
		if v != 2 {
			t.Errorf("a value above the threshold went: %v", first)
		}
	}
	differs := false
	for seed := int64(2); seed < 10 && !differs; seed++ {
		other := prune(seed)
		if zeros(other) != 5 {
			t.Errorf("seed %d: %d zeros, want 5", seed, zeros(other))
		}
		differs = !cmp.Equal(first, other)
	}
	if !differs {
		t.Errorf("seeds 2..9 all chose the same tied values as seed 1: ties are not broken by the seed")
	}
}

// TestKthAbs checks the radix selection against sorting on values that
// share their high 16 bits.
func TestKthAbs(t *testing.T) {
	rng := newRand(3)
	vals := make([]float32, 5000)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
		if i%7 == 0 {
			vals[i] = 1 + float32(i%13)*1e-7 // same high bits, different low bits
		}
	}
	sorted := make([]uint32, len(vals))
	for i, v := range vals {
		sorted[i] = absKey(v)
	}
	sortUint32(sorted)
	for _, k := range []int{1, 2, 100, 2500, 4999, 5000} {
		kth, below := kthAbs([][]float32{vals[:2000], vals[2000:]}, k)
		if kth != sorted[k-1] {
			t.Errorf("k=%d: key %x, want %x", k, kth, sorted[k-1])
		}
		wantBelow := 0
		for wantBelow < len(sorted) && sorted[wantBelow] < kth {
			wantBelow++
		}
		if below != wantBelow {
			t.Errorf("k=%d: %d below, want %d", k, below, wantBelow)
		}
	}
}

// TestForEachRaisesAPanic: a panic in f (on one of forEach's goroutines)
// stops the others taking more and is raised on the caller as a
// *panics.Panic, where runner.Execute recovers it, instead of crashing
// the process.
func TestForEachRaisesAPanic(t *testing.T) {
	var ran atomic.Int32
	p := func() (p any) {
		defer func() { p = recover() }()
		forEach(100000, func(i int) {
			ran.Add(1)
			if i == 7 {
				panic("layer 7 broke")
			}
			// Work that takes time, as a layer does: the others stop
			// once the panic is recovered, and on a loaded machine
			// instant calls could all run before that.
			time.Sleep(50 * time.Microsecond)
		})
		return nil
	}()
	pv, ok := p.(*panics.Panic)
	if !ok || pv.Value != "layer 7 broke" || !strings.Contains(pv.Message(), "magnitude_test.go:") {
		t.Fatalf("recovered %T %v; want a *panics.Panic at its line in magnitude_test.go", p, p)
	}
	if r := ran.Load(); r > 5000 {
		t.Errorf("%d calls ran after the panic: the others must stop", r)
	}
}
