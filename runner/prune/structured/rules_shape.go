package structured

import (
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// ruleReshape handles Reshape, Flatten, Squeeze and Unsqueeze from the
// shapes of the probe run. Each channel is a contiguous run of elements
// for every index of the axes before it; the output keeps the channels if
// some output axis starts after the same prefix and holds a whole number
// of elements per channel: [N,C,H,W] -> [N,C*H*W] gives blocks of H*W,
// and back. Splitting or interleaving channels (a channel shuffle) pins.
// A Reshape's shape constant that names the channel axis's length is
// rewritten; a computed shape must leave that axis to -1.
func ruleReshape(a *analysis, n *onnxpb.NodeProto) {
	x, out := input(n, 0), output(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	s, ok1 := a.shapes[x]
	t, ok2 := a.shapes[out]
	if !ok1 || !ok2 {
		a.pin(x, in, fmt.Sprintf("%s: shapes unknown", a.label[n]))
		return
	}
	ch := int64(len(in.ids))
	outer := prod(s[:in.axis])
	ax := -1
	for j := range t {
		p := prod(t[:j])
		if p > outer {
			break
		}
		if p == outer && t[j]%ch == 0 && (t[j] > 1 || ch == 1) {
			ax = j
			break
		}
	}
	if ax < 0 || (t[ax]/ch)*prod(t[ax+1:]) != int64(in.block)*prod(s[in.axis+1:]) {
		a.pin(x, in, fmt.Sprintf("%s splits or interleaves the channels (%v -> %v)", a.label[n], s, t))
		return
	}
	l := &layout{axis: ax, ids: in.ids, block: int(t[ax] / ch)}
	if n.GetOpType() == "Reshape" && !a.reshapeTarget(n, in, l) {
		return
	}
	a.lay[out] = l
	a.passOrigin(x, out)
}

// reshapeTarget checks (and registers the rewrite of) a Reshape's shape
// input for output layout l; false when it pinned.
func (a *analysis) reshapeTarget(n *onnxpb.NodeProto, in, l *layout) bool {
	x := input(n, 0)
	v, ok := a.ints(n, 1)
	if !ok || len(v) != len(a.shapes[output(n, 0)]) {
		a.pin(x, in, fmt.Sprintf("%s: its target shape is unknown", a.label[n]))
		return false
	}
	copies := onnx.IntAttr(n, "allowzero", 0) == 0
	for j, d := range v {
		if copies && d == 0 && j == in.axis && (j != l.axis || l.block != in.block) {
			a.pin(x, in, fmt.Sprintf("%s copies the channel count to another axis", a.label[n]))
			return false
		}
	}
	switch d := v[l.axis]; {
	case d == -1, d == 0 && copies:
	case a.weight(n, 1) != nil:
		a.edits = append(a.edits, edit{kind: setValue, node: n, input: 1, axis: l.axis, lay: l})
	default:
		a.pin(x, in, fmt.Sprintf("%s: its computed target shape names the channel count", a.label[n]))
		return false
	}
	return true
}

// ruleTranspose moves the channel axis where perm sends it.
func ruleTranspose(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := a.rank(x)
	perm, ok := onnx.IntsAttr(n, "perm")
	if !ok {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	j := slices.Index(perm, int64(in.axis))
	if j < 0 {
		a.pin(x, in, fmt.Sprintf("%s: perm %v", a.label[n], perm))
		return
	}
	a.lay[output(n, 0)] = in.withAxis(j)
}

// ruleConcat: along the channel axis the output's channels are the inputs'
// in order (untracked inputs contribute pinned channels); along another
// axis the inputs' channels line up and are coupled.
func ruleConcat(a *analysis, n *onnxpb.NodeProto) {
	out := output(n, 0)
	r := a.rank(out)
	axis, ok := normAxis(onnx.IntAttr(n, "axis", 0), r)
	if !ok {
		a.opaque(n, "its axis is out of range")
		return
	}
	along := false
	for _, in := range n.GetInput() {
		if l := a.lay[in]; l != nil && l.axis == axis {
			along = true
		}
	}
	if along {
		a.concatChannels(n, axis)
		return
	}
	var first *layout
	for _, in := range n.GetInput() {
		l := a.lay[in]
		switch {
		case l == nil:
			if first != nil || a.anyTracked(n) {
				a.pinInputs(n, fmt.Sprintf("input %q has channels that are not tracked", in))
				return
			}
		case first == nil:
			first = l
		case l.axis != first.axis || len(l.ids) != len(first.ids) || l.block != first.block:
			a.pinInputs(n, "its inputs carry channels differently")
			return
		default:
			for i := range first.ids {
				a.cls.union(first.ids[i], l.ids[i])
			}
		}
	}
	if first != nil {
		a.lay[out] = first
	}
}

func (a *analysis) anyTracked(n *onnxpb.NodeProto) bool {
	for _, in := range n.GetInput() {
		if a.lay[in] != nil {
			return true
		}
	}
	return false
}

func (a *analysis) concatChannels(n *onnxpb.NodeProto, axis int) {
	var ids []int32
	block := 0
	for _, in := range n.GetInput() {
		l := a.lay[in]
		if l != nil && l.axis != axis {
			a.pin(in, l, fmt.Sprintf("%s concatenates along axis %d, its channels are on axis %d", a.label[n], axis, l.axis))
			l = nil
		}
		if l == nil {
			if l = a.fixed(in, axis, fmt.Sprintf("concatenated by %s with channels no layer produces", a.label[n])); l == nil {
				a.pinInputs(n, fmt.Sprintf("the shape of input %q is unknown", in))
				return
			}
		}
		if block == 0 {
			block = l.block
		}
		if l.block != block {
			a.pinInputs(n, "its inputs hold channels in blocks of different sizes")
			return
		}
		ids = append(ids, l.ids...)
	}
	a.lay[output(n, 0)] = &layout{axis: axis, ids: ids, block: block}
}

// ruleSplit: splitting along another axis keeps the channels in every
// part; along the channel axis it pins (the split sizes would have to
// follow).
func ruleSplit(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	if axis, _ := normAxis(onnx.IntAttr(n, "axis", 0), a.rank(x)); axis == in.axis {
		a.pin(x, in, fmt.Sprintf("%s splits the channel axis", a.label[n]))
		return
	}
	for _, o := range n.GetOutput() {
		if o != "" {
			a.lay[o] = in
		}
	}
}

// ruleSlice: slicing other axes keeps the channels; a slice that takes the
// whole channel axis (start 0, step 1, end past it) too. Anything else on
// the channel axis pins.
func ruleSlice(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := a.rank(x)
	var starts, ends, axes, steps []int64
	ok := true
	if a.opset < 10 {
		starts, _ = onnx.IntsAttr(n, "starts")
		ends, _ = onnx.IntsAttr(n, "ends")
		axes, _ = onnx.IntsAttr(n, "axes")
	} else {
		var ok1, ok2 bool
		starts, ok1 = a.ints(n, 1)
		ends, ok2 = a.ints(n, 2)
		ok = ok1 && ok2
		if input(n, 3) != "" {
			var ok3 bool
			axes, ok3 = a.ints(n, 3)
			ok = ok && ok3
		}
		if input(n, 4) != "" {
			var ok4 bool
			steps, ok4 = a.ints(n, 4)
			ok = ok && ok4
		}
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if !ok || len(starts) != len(axes) || len(ends) != len(axes) {
		a.pin(x, in, fmt.Sprintf("%s: its slice bounds are unknown", a.label[n]))
		return
	}
	dim := int64(in.size())
	for i, ax := range axes {
		if j, _ := normAxis(ax, r); j != in.axis {
			continue
		}
		step := int64(1)
		if steps != nil {
			step = steps[i]
		}
		if starts[i] != 0 || step != 1 || ends[i] < dim {
			a.pin(x, in, fmt.Sprintf("%s slices the channel axis", a.label[n]))
			return
		}
	}
	a.lay[output(n, 0)] = in
}

// ruleReduce: reducing other axes keeps the channels (the axis moves down
// when reduced axes before it are dropped); reducing the channel axis
// pins, as its result would depend on which channels remain.
func ruleReduce(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := a.rank(x)
	var axes []int64
	ok := true
	switch op := n.GetOpType(); {
	case op == "ArgMax" || op == "ArgMin":
		axes = []int64{onnx.IntAttr(n, "axis", 0)}
	case onnx.FindAttr(n, "axes") != nil:
		axes, _ = onnx.IntsAttr(n, "axes")
	case input(n, 1) != "":
		axes, ok = a.ints(n, 1)
	}
	if !ok {
		a.pin(x, in, fmt.Sprintf("%s: its axes are unknown", a.label[n]))
		return
	}
	if len(axes) == 0 {
		if onnx.IntAttr(n, "noop_with_empty_axes", 0) != 0 {
			a.lay[output(n, 0)] = in
			return
		}
		a.pin(x, in, fmt.Sprintf("%s reduces every axis", a.label[n]))
		return
	}
	below := 0
	for _, ax := range axes {
		j, _ := normAxis(ax, r)
		if j == in.axis {
			a.pin(x, in, fmt.Sprintf("%s reduces the channel axis", a.label[n]))
			return
		}
		if j < in.axis {
			below++
		}
	}
	axis := in.axis
	if onnx.IntAttr(n, "keepdims", 1) == 0 {
		axis -= below
	}
	a.lay[output(n, 0)] = in.withAxis(axis)
}

// ruleSoftmax: normalizing over the channel axis pins (the result would
// depend on which channels remain). Before opset 13 the operator works on
// all axes from axis on.
func ruleSoftmax(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := a.rank(x)
	def := int64(-1)
	if a.opset < 13 {
		def = 1
	}
	axis, _ := normAxis(onnx.IntAttr(n, "axis", def), r)
	if axis == in.axis || (a.opset < 13 && in.axis > axis) {
		a.pin(x, in, fmt.Sprintf("%s normalizes over the channel axis", a.label[n]))
		return
	}
	a.lay[output(n, 0)] = in
	a.passOrigin(x, output(n, 0))
}

// ruleShape: a tensor's shape changes with its channels. Reading the other
// dimensions is safe: a Shape whose range leaves the channel axis out, or
// whose output only goes to Gathers of other dimensions. Anything else
// pins, so computed shapes keep the values of the probe run.
func ruleShape(a *analysis, n *onnxpb.NodeProto) {
	x, out := input(n, 0), output(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := int64(a.rank(x))
	start, end := onnx.IntAttr(n, "start", 0), onnx.IntAttr(n, "end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	end = min(end, r)
	pos := int64(in.axis) - start
	if pos < 0 || int64(in.axis) >= end {
		return
	}
	for _, u := range a.ix.Consumers[out] {
		idx, ok := a.ints(u.Node, 1)
		if u.OpType() != "Gather" || u.Input != 0 || onnx.IntAttr(u.Node, "axis", 0) != 0 || !ok || slices.Contains(idx, pos) || slices.Contains(idx, pos-(end-start)) {
			a.pin(x, in, fmt.Sprintf("%s reads the channel count", a.label[n]))
			return
		}
	}
}
