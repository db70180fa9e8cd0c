package prune

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
)

// Why a floating-point weight may stay dense without a warning: the
// options asked for it, or it is no matrix of weights.
var requestedDense = map[Reason]bool{
	ReasonBias: true, ReasonNormalization: true, ReasonExcludedNode: true, ReasonExcludedOpType: true,
	ReasonUnused: true, ReasonMinParams: true, ReasonGraphOutput: true,
}

// shortfallShare is the share of the layer weights' elements left dense
// (for reasons the options did not give) from which a result is said to
// miss the sparsity asked: below it, result.json lists them.
const shortfallShare = 0.01

// shortfall returns the warnings of a result that misses the sparsity
// asked: layer weights (the operator table's weight inputs: embedding
// tables among them) left dense for reasons the options did not give, and
// N:M's dense remainders, when they hold at least shortfallShare of the
// layer weights' elements.
func shortfall(m *onnx.Model, r *Report, o *options, asked float64) []string {
	uses := map[string][]onnx.Use{}
	for _, w := range m.Weights() {
		uses[w.Name] = w.Uses
	}
	layerWeight := func(s Skipped) bool {
		for _, u := range uses[s.Name] {
			if o.excludeNodes[u.Node.GetName()] || o.excludeOps[u.Node.GetOpType()] {
				return false // the options left it alone
			}
		}
		if s.Reason == ReasonComputed || s.Reason == ReasonTied {
			return true
		}
		for _, u := range uses[s.Name] {
			if l, ok := onnx.LayerOf(u.Node); ok && slices.Contains(l.Weights(), u.Input) {
				return true
			}
		}
		return false
	}
	var left int64
	count := 0
	byReason := map[Reason][]string{}
	for _, s := range r.Skipped {
		if requestedDense[s.Reason] || !layerWeight(s) {
			continue
		}
		count++
		left += s.Params
		what := s.Name
		if s.OpType != "" {
			what = fmt.Sprintf("%s (%s)", s.Name, s.OpType)
		}
		byReason[s.Reason] = append(byReason[s.Reason], what)
	}
	var dense int64
	for _, l := range r.Layers {
		dense += l.Dense
	}
	total := r.Params + left
	var warnings []string
	if count > 0 && (float64(left) >= shortfallShare*float64(total) || len(byReason[ReasonComputed]) > 0) {
		warnings = append(warnings, fmt.Sprintf("%s left %d layer weights dense (%d of %d weight elements, %.1f%%), so %.1f%% of the layer weights are zero, not the %.4g%% asked: %s",
			r.Method, count, left, total, 100*float64(left)/float64(total), 100*float64(r.Zeros)/float64(max(total, 1)), 100*asked, byReasonList(byReason)))
	}
	if float64(dense) >= shortfallShare*float64(max(r.Params, 1)) {
		_, m, _ := strings.Cut(r.Pattern, ":")
		warnings = append(warnings, fmt.Sprintf("pattern %s left %d weights dense (%.1f%% of the pruned layers'): the runs of input channels their groups take are not a multiple of %s long",
			r.Pattern, dense, 100*float64(dense)/float64(r.Params), m))
	}
	return warnings
}

// byReasonList says which weights were left alone for each reason, the
// first three names of each, reasons in order.
func byReasonList(by map[Reason][]string) string {
	var parts []string
	for reason, names := range by {
		if len(names) > 3 {
			names = append(names[:3:3], fmt.Sprintf("and %d more", len(names)-3))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", reason, strings.Join(names, ", ")))
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}
