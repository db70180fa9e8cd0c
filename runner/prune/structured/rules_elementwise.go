package structured

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// ruleElementwise handles operators applied element by element with
// broadcasting (Add, Mul, Relu, Clip, Where ...). Inputs that carry
// channels on the same output axis are coupled channel by channel (a
// residual Add). Weights that hold one value per channel (a [C,1,1] bias)
// are sliced; weights and computed tensors of size 1 along the channel
// axis broadcast and need nothing. A computed tensor without tracked
// channels but with C of them pins the channels.
func ruleElementwise(a *analysis, n *onnxpb.NodeProto) {
	out := output(n, 0)
	oshape, ok := a.shapes[out]
	if !ok {
		a.opaque(n, "its output shape is unknown")
		return
	}
	rOut := len(oshape)
	type tracked struct {
		name string
		l    *layout
	}
	var ts []tracked
	axis := -1
	for _, in := range n.GetInput() {
		l := a.lay[in]
		if l == nil {
			continue
		}
		ax := l.axis + rOut - a.rank(in)
		if axis >= 0 && ax != axis {
			a.pinInputs(n, "its inputs carry channels on different axes")
			return
		}
		axis = ax
		ts = append(ts, tracked{in, l})
	}
	if len(ts) == 0 {
		return
	}
	size := int(oshape[axis])
	var main *layout
	for _, t := range ts {
		if t.l.size() == size {
			main = t.l
			break
		}
	}
	if main == nil {
		a.pinInputs(n, "no input has as many channels as the output")
		return
	}
	for _, t := range ts {
		switch {
		case t.l == main:
		case t.l.size() == size && t.l.block == main.block:
			for i := range main.ids {
				a.cls.union(main.ids[i], t.l.ids[i])
			}
		case t.l.size() == 1:
			a.pin(t.name, t.l, fmt.Sprintf("%s broadcasts its single channel", a.label[n]))
		default:
			a.pinInputs(n, "its inputs hold channels in blocks of different sizes")
			return
		}
	}
	for i, in := range n.GetInput() {
		if in == "" || a.lay[in] != nil {
			continue
		}
		if n.GetOpType() == "Dropout" && i > 0 {
			continue // ratio and training mode are scalars
		}
		s, ok := a.shape(in)
		if !ok {
			a.pinInputs(n, fmt.Sprintf("the shape of input %q is unknown", in))
			return
		}
		ax := axis - (rOut - len(s))
		if ax < 0 || s[ax] == 1 {
			continue
		}
		if a.weight(n, i) != nil && a.slice(n, i, ax, main) {
			continue
		}
		a.pinInputs(n, fmt.Sprintf("input %q holds %d values along the channel axis that are not tracked", in, s[ax]))
		return
	}
	l := main.withAxis(axis)
	a.lay[out] = l
	// The output holds one source's channels unmixed when every tracked
	// input does (x * clip(x+3, 0, 6) of a hard-swish, say).
	if s := a.origin[ts[0].name]; s != nil {
		same := true
		for _, t := range ts {
			same = same && a.origin[t.name] == s
		}
		if same {
			a.origin[out] = s
		}
	}
	a.extraOutputs(n, l)
}

// extraOutputs gives n's other consumed outputs (Dropout's mask) the
// layout of output 0 when they have its shape, else pins it.
func (a *analysis) extraOutputs(n *onnxpb.NodeProto, l *layout) {
	s0 := a.shapes[output(n, 0)]
	for _, o := range n.GetOutput()[1:] {
		if o == "" || len(a.ix.Consumers[o]) == 0 {
			continue
		}
		if s, ok := a.shapes[o]; ok && fmt.Sprint(s) == fmt.Sprint(s0) {
			a.lay[o] = l
			continue
		}
		a.pin(output(n, 0), l, fmt.Sprintf("%s: output %q depends on the channels", a.label[n], o))
	}
}

// ruleCastLike casts input 0 to input 1's type; input 1's shape does not
// matter.
func ruleCastLike(a *analysis, n *onnxpb.NodeProto) {
	if l := a.lay[input(n, 0)]; l != nil {
		a.lay[output(n, 0)] = l
		a.passOrigin(input(n, 0), output(n, 0))
	}
}

// rulePool: pooling keeps axes 0 and 1 and works on each channel alone.
// MaxPool's Indices count positions across channels: reading them pins.
func rulePool(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	if in.axis > 1 {
		a.pin(x, in, fmt.Sprintf("%s pools over the channel axis", a.label[n]))
		return
	}
	if o := output(n, 1); o != "" && len(a.ix.Consumers[o]) > 0 {
		a.pin(x, in, fmt.Sprintf("%s: its Indices output is read", a.label[n]))
		return
	}
	a.lay[output(n, 0)] = in
}

// ruleResize: scaling must leave the channel axis alone (the probe run
// shows it); a constant sizes input that names the channel count is
// rewritten.
func ruleResize(a *analysis, n *onnxpb.NodeProto) {
	x, out := input(n, 0), output(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	s, ok1 := a.shapes[x]
	t, ok2 := a.shapes[out]
	if !ok1 || !ok2 || len(s) != len(t) || s[in.axis] != t[in.axis] {
		a.pin(x, in, fmt.Sprintf("%s resizes the channel axis", a.label[n]))
		return
	}
	if n.GetOpType() == "Resize" && input(n, 3) != "" {
		sz := a.weight(n, 3)
		if sz == nil || sz.NumElements() != len(s) {
			a.pin(x, in, fmt.Sprintf("%s: its sizes are computed at run time", a.label[n]))
			return
		}
		a.edits = append(a.edits, edit{kind: setValue, node: n, input: 3, axis: in.axis, lay: in})
	}
	a.lay[out] = in
}

// rulePad: padding must leave the channel axis alone; pads must be known.
func rulePad(a *analysis, n *onnxpb.NodeProto) {
	x := input(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	r := a.rank(x)
	pads, ok := onnx.IntsAttr(n, "pads")
	if !ok {
		pads, ok = a.ints(n, 1)
	}
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if input(n, 3) != "" {
		var ok2 bool
		axes, ok2 = a.ints(n, 3)
		ok = ok && ok2
	}
	if !ok || len(pads) != 2*len(axes) {
		a.pin(x, in, fmt.Sprintf("%s: its pads are computed at run time", a.label[n]))
		return
	}
	for i, ax := range axes {
		if j, _ := normAxis(ax, r); j == in.axis && (pads[i] != 0 || pads[i+len(axes)] != 0) {
			a.pin(x, in, fmt.Sprintf("%s pads the channel axis", a.label[n]))
			return
		}
	}
	a.lay[output(n, 0)] = in
}

// ints reads the integer weight at input i of n, or the value it had in the
// probe run when it is a small computed tensor (a shape built from Shape
// and Gather): computed integers that depend on channels are pinned where
// they are made, so probe values hold after pruning.
func (a *analysis) ints(n *onnxpb.NodeProto, i int) ([]int64, bool) {
	name := input(n, i)
	if a.lay[name] != nil {
		return nil, false
	}
	t := a.values[name]
	if w := a.weight(n, i); w != nil {
		var err error
		if t, err = w.Tensor(); err != nil {
			return nil, false
		}
	}
	if t == nil {
		return nil, false
	}
	switch d := t.Data.(type) {
	case []int64:
		return d, true
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, true
	}
	return nil, false
}
