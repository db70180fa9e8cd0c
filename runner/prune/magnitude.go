package prune

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/kompress/kompress/runner/panics"
)

// magnitude zeroes the weights of smallest absolute value: a fraction
// o.sparsity of each weight (scope layer), or as many over all weights
// together, each layer losing as many as its LAMP scores say (scope
// global, see lampCounts). Layers are pruned in parallel. It returns each
// weight's mask description.
func magnitude(vals [][]float32, o *options, progress func(done int)) []string {
	masks := make([]string, len(vals))
	var done atomic.Int64
	var mu sync.Mutex
	step := func() {
		mu.Lock()
		defer mu.Unlock()
		progress(int(done.Add(1)))
	}
	if o.scope != ScopeGlobal {
		forEach(len(vals), func(i int) {
			cut := zeroSmallestAbs(vals[i:i+1], removed(len(vals[i]), o.sparsity), o.seed)
			masks[i] = fmt.Sprintf("unstructured, the %.4g%% of smallest |w| zeroed (|w| <= %.6g)", 100*o.sparsity, cut)
			step()
		})
		return masks
	}
	total := 0
	for _, v := range vals {
		total += len(v)
	}
	bins := layerBins(vals)
	counts := lampCounts(vals, bins, removed(total, o.sparsity))
	forEach(len(vals), func(i int) {
		cut := float32(0)
		if k := counts[i]; k > 0 {
			kth, below := kthFromBins(vals[i], bins[i], k)
			cut = zeroUpTo(vals[i:i+1], k, kth, below, o.seed)
		}
		masks[i] = fmt.Sprintf("unstructured, the %.4g%% of smallest |w| zeroed (|w| <= %.6g): the layer's share of a %.4g%% global sparsity by LAMP score",
			100*float64(counts[i])/float64(max(len(vals[i]), 1)), cut, 100*o.sparsity)
		step()
	})
	return masks
}

// forEach calls f(0) ... f(n-1), up to GOMAXPROCS at a time. A panic in
// f stops the others from taking more and is raised again here.
func forEach(n int, f func(i int)) {
	var next atomic.Int64
	g := panics.Group{OnPanic: func() { next.Store(int64(n)) }}
	for range min(n, runtime.GOMAXPROCS(0)) {
		g.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				f(i)
			}
		})
	}
	g.Wait()
}

// removed is how many of n weights a sparsity removes.
func removed(n int, sparsity float64) int {
	return int(math.Round(float64(n) * sparsity))
}
