package prune

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/api/v1alpha1"
)

// magnitude zeroes the weights of smallest absolute value: a fraction
// o.sparsity of each weight (scope layer), or of all of them under one
// threshold (scope global). It returns each weight's mask description.
func magnitude(vals [][]float32, o *options, progress func(done int)) []string {
	masks := make([]string, len(vals))
	if o.scope == v1alpha1.ScopeGlobal {
		total := 0
		for _, v := range vals {
			total += len(v)
		}
		cut := zeroSmallestAbs(vals, removed(total, o.sparsity), o.seed)
		for i := range masks {
			masks[i] = fmt.Sprintf("unstructured, |w| <= %.6g zeroed (global threshold over all pruned weights)", cut)
		}
		progress(len(vals))
		return masks
	}
	for i, v := range vals {
		cut := zeroSmallestAbs([][]float32{v}, removed(len(v), o.sparsity), o.seed)
		masks[i] = fmt.Sprintf("unstructured, the %.4g%% of smallest |w| zeroed (|w| <= %.6g)", 100*o.sparsity, cut)
		progress(i + 1)
	}
	return masks
}

// removed is how many of n weights a sparsity removes.
func removed(n int, sparsity float64) int {
	return int(math.Round(float64(n) * sparsity))
}
