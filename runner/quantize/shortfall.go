package quantize

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
)

// Why a layer weight may stay in float without a warning: the options
// asked for it, or it is no matrix of weights (a bias, a rotary cache).
var requestedFloat = map[Reason]bool{
	ReasonExcludedNode: true, ReasonExcludedOpType: true, ReasonBias: true, ReasonRotary: true,
}

// shortfallShare is the share of the layer weights' elements left in
// float (for reasons the options did not give) from which a result is
// said to miss the method's precision: below it, result.json lists them.
const shortfallShare = 0.01

// shortfall returns the warnings of a result that misses the method's
// precision: layer weights (the operator table's weight inputs) left in
// float for reasons the options did not give, when they hold at least
// shortfallShare of the layer weights' elements.
func shortfall(m *onnx.Model, r *Report, o *options) []string {
	ix := newIndex(m)
	excluded := func(name string) bool {
		for _, u := range ix.uses[name] {
			if o.excluded(u.node.GetOpType(), u.node.GetName()) != "" {
				return true
			}
		}
		return false
	}
	layerWeight := func(name string) bool {
		for _, u := range ix.uses[name] {
			if l, ok := onnx.LayerOf(u.node); ok && slices.Contains(l.Weights(), u.input) {
				return true
			}
		}
		return false
	}
	total := 0
	for _, q := range r.Quantized {
		if q.Type != "int32" {
			total += q.Elements
		}
	}
	left := 0
	byReason := map[Reason][]string{}
	seen := map[string]bool{}
	for _, f := range r.Float {
		if requestedFloat[f.Reason] || seen[f.Name] || excluded(f.Name) || (f.Reason != ReasonComputed && !layerWeight(f.Name)) {
			continue
		}
		seen[f.Name] = true
		n := 0
		if c := ix.consts[f.Name]; c != nil {
			n = onnx.NumElements(c.dims())
		}
		left += n
		what := f.Name
		if f.OpType != "" {
			what = fmt.Sprintf("%s (%s)", f.Name, f.OpType)
		}
		byReason[f.Reason] = append(byReason[f.Reason], what)
	}
	total += left
	if left == 0 && len(byReason) == 0 || float64(left) < shortfallShare*float64(total) && !hasComputed(byReason) {
		return nil
	}
	var parts []string
	count := 0
	for reason, names := range byReason {
		count += len(names)
		shown := names
		if len(shown) > 3 {
			shown = append(shown[:3:3], fmt.Sprintf("and %d more", len(names)-3))
		}
		parts = append(parts, fmt.Sprintf("%s: %s", reason, strings.Join(shown, ", ")))
	}
	sort.Strings(parts)
	return []string{fmt.Sprintf("%s left %d layer weights in float (%d of %d weight elements, %.1f%%): %s",
		r.Method, count, left, total, 100*float64(left)/float64(max(total, 1)), strings.Join(parts, "; "))}
}

// hasComputed: a weight computed at run time is always worth saying.
func hasComputed(byReason map[Reason][]string) bool { return len(byReason[ReasonComputed]) > 0 }
