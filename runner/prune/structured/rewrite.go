package structured

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// kept returns the positions of l's channels that stay.
func (a *analysis) kept(p *plan, l *layout) []int {
	var keep []int
	for i, id := range l.ids {
		if !p.removed(&a.cls, id) {
			keep = append(keep, i)
		}
	}
	return keep
}

// positions expands channel positions to element positions along the
// channel axis (block elements per channel).
func positions(keep []int, block int) []int {
	out := make([]int, 0, len(keep)*block)
	for _, c := range keep {
		for b := range block {
			out = append(out, c*block+b)
		}
	}
	return out
}

// transform is what one use of a weight needs done to it.
type transform struct {
	kind editKind
	axis int
	// pos are the element positions kept along axis (sliceWeight);
	// value is the new element (setValue).
	pos   []int
	value int64
}

type use struct {
	node  *onnxpb.NodeProto
	input int
}

// apply performs the plan: weights are sliced (a weight shared by uses
// that need different slices is copied for each), shape constants and
// group counts rewritten, and declared shapes of changed tensors dropped
// (ONNX Runtime infers them again).
func (a *analysis) apply(p *plan) error {
	todo := map[use][]transform{}
	for _, e := range a.edits {
		keep := a.kept(p, e.lay)
		if len(keep) == len(e.lay.ids) {
			continue
		}
		switch e.kind {
		case sliceWeight:
			u := use{e.node, e.input}
			todo[u] = append(todo[u], transform{kind: sliceWeight, axis: e.axis, pos: positions(keep, e.lay.block)})
		case setValue:
			u := use{e.node, e.input}
			todo[u] = append(todo[u], transform{kind: setValue, axis: e.axis, value: int64(len(keep) * e.lay.block)})
		case setGroup:
			setAttrInt(e.node, "group", int64(len(keep)*e.lay.block))
		}
	}
	byWeight := map[string]bool{}
	var names []string
	for u := range todo {
		name := u.node.GetInput()[u.input]
		if !byWeight[name] {
			byWeight[name] = true
			names = append(names, name)
		}
	}
	for _, name := range names {
		if err := a.rewriteWeight(a.weights[name], todo); err != nil {
			return err
		}
	}
	a.dropValueInfo(p)
	return nil
}

// rewriteWeight applies the transforms each use of w needs. Uses that need
// the same share one tensor; when uses differ, the original stays with the
// uses that need it unchanged (or the first group) and the others get a
// transformed copy.
func (a *analysis) rewriteWeight(w *onnx.Weight, todo map[use][]transform) error {
	var keys []string
	uses := map[string][]use{}
	for _, u := range w.Uses {
		if u.GraphPath != "" {
			uses[""] = append(uses[""], use{}) // a subgraph reads it as it is
			continue
		}
		k := key(todo[use{u.Node, u.Input}])
		if _, ok := uses[k]; !ok {
			keys = append(keys, k)
		}
		uses[k] = append(uses[k], use{u.Node, u.Input})
	}
	for _, o := range a.g.GetOutput() {
		if o.GetName() == w.Name {
			uses[""] = append(uses[""], use{})
		}
	}
	orig, err := w.Tensor()
	if err != nil {
		return fmt.Errorf("weight %q: %w", w.Name, err)
	}
	inPlace := ""
	if _, ok := uses[""]; !ok {
		inPlace = keys[0]
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		us := uses[k]
		t, err := transformTensor(orig, todo[us[0]])
		if err != nil {
			return fmt.Errorf("weight %q read by %s: %w", w.Name, a.label[us[0].node], err)
		}
		if k == inPlace {
			if err := w.Set(t); err != nil {
				return err
			}
			continue
		}
		name, err := a.addWeight(w.Name+"_pruned", t)
		if err != nil {
			return err
		}
		for _, u := range us {
			u.node.Input[u.input] = name
		}
	}
	return nil
}

func key(ts []transform) string {
	var b strings.Builder
	for _, t := range ts {
		fmt.Fprintf(&b, "%d/%d/%v/%d;", t.kind, t.axis, t.pos, t.value)
	}
	return b.String()
}

func transformTensor(t *onnx.Tensor, ts []transform) (*onnx.Tensor, error) {
	t = t.Clone()
	for _, tr := range ts {
		switch tr.kind {
		case sliceWeight:
			t = sliceAxis(t, tr.axis, tr.pos)
		case setValue:
			switch d := t.Data.(type) {
			case []int64:
				d[tr.axis] = tr.value
			case []int32:
				d[tr.axis] = int32(tr.value)
			default:
				return nil, fmt.Errorf("a shape must be int64 or int32, not %v", t.DType)
			}
		}
	}
	return t, t.Validate()
}

// sliceAxis keeps the given positions along axis, in order.
func sliceAxis(t *onnx.Tensor, axis int, pos []int) *onnx.Tensor {
	dims := append([]int64(nil), t.Dims...)
	outer, size, inner := int(prod(dims[:axis])), int(dims[axis]), int(prod(dims[axis+1:]))
	src := reflect.ValueOf(t.Data)
	dst := reflect.MakeSlice(src.Type(), outer*len(pos)*inner, outer*len(pos)*inner)
	at := 0
	for o := range outer {
		for _, p := range pos {
			from := (o*size + p) * inner
			reflect.Copy(dst.Slice(at, at+inner), src.Slice(from, from+inner))
			at += inner
		}
	}
	dims[axis] = int64(len(pos))
	return &onnx.Tensor{DType: t.DType, Dims: dims, Data: dst.Interface()}
}

// dropValueInfo removes the declared shapes of tensors that lost channels.
func (a *analysis) dropValueInfo(p *plan) {
	var vis []*onnxpb.ValueInfoProto
	for _, vi := range a.g.GetValueInfo() {
		if l := a.lay[vi.GetName()]; l != nil && len(a.kept(p, l)) != len(l.ids) {
			continue
		}
		vis = append(vis, vi)
	}
	a.g.ValueInfo = vis
}
