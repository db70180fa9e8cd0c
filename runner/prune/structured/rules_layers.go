package structured

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// ruleConv: a Conv's output channels are candidates (group 1); its input
// channels follow the producer's (weight axis 1). A depthwise Conv (group
// = input channels) has one filter per input channel: it passes the
// input's channels through, losing the same ones, with its group count.
func ruleConv(a *analysis, n *onnxpb.NodeProto) {
	c, ok := convOperands(a, n)
	if !ok {
		return
	}
	x, out, w, group, in := c.x, output(n, 0), c.w, c.group, c.in
	switch {
	case group == 1:
		if in != nil && !a.mix(n, c.Weight, c.inAxis, in) {
			a.pin(x, in, fmt.Sprintf("%s: weight %v does not match %d input channels", a.label[n], w.Dims, in.size()))
		}
		l := a.newSource(n, w, c.outAxis, c.channels)
		a.bias(n, c.Bias, l)
		a.lay[out] = l
	case in != nil && group == int64(in.size()) && w.Dims[c.inAxis] == 1 && w.Dims[c.outAxis]%group == 0:
		mult := int(w.Dims[c.outAxis] / group)
		l := &layout{axis: c.channels, ids: in.ids, block: in.block * mult}
		a.slice(n, c.Weight, c.outAxis, l)
		a.bias(n, c.Bias, l)
		a.edits = append(a.edits, edit{kind: setGroup, node: n, lay: in})
		a.lay[out] = l
		if mult == 1 {
			// Each output channel is a filter of one input channel:
			// still unmixed, for entropy.
			a.passOrigin(x, out)
		}
	default:
		a.pinInputs(n, fmt.Sprintf("grouped convolution (group=%d)", group))
	}
}

// ruleConvTranspose: weight [Cin, Cout/group, k...]; output channels along
// axis 1 of the weight, input channels along axis 0.
func ruleConvTranspose(a *analysis, n *onnxpb.NodeProto) {
	c, ok := convOperands(a, n)
	if !ok {
		return
	}
	x, out, w, group, in := c.x, output(n, 0), c.w, c.group, c.in
	switch {
	case group == 1:
		if in != nil && !a.mix(n, c.Weight, c.inAxis, in) {
			a.pin(x, in, fmt.Sprintf("%s: weight %v does not match %d input channels", a.label[n], w.Dims, in.size()))
		}
		l := a.newSource(n, w, c.outAxis, c.channels)
		a.bias(n, c.Bias, l)
		a.lay[out] = l
	case in != nil && group == int64(in.size()) && w.Dims[c.inAxis] == group:
		l := &layout{axis: c.channels, ids: in.ids, block: in.block * int(w.Dims[c.outAxis])}
		a.slice(n, c.Weight, c.inAxis, in)
		a.bias(n, c.Bias, l)
		a.edits = append(a.edits, edit{kind: setGroup, node: n, lay: in})
		a.lay[out] = l
	default:
		a.pinInputs(n, fmt.Sprintf("grouped transposed convolution (group=%d)", group))
	}
}

// bias registers the slicing of a per-channel bias at input i (absent is
// fine); a bias that is not a weight of l.size() elements pins l.
func (a *analysis) bias(n *onnxpb.NodeProto, i int, l *layout) {
	if input(n, i) == "" {
		return
	}
	if !a.slice(n, i, 0, l) {
		a.pin(output(n, 0), l, fmt.Sprintf("%s: bias %q is not a weight of %d elements", a.label[n], input(n, i), l.size()))
	}
}

// ruleGemm: Y = alpha*A'*B' + beta*C with B a weight; output units along
// B's N axis, input features along its K axis.
func ruleGemm(a *analysis, n *onnxpb.NodeProto) {
	lay, _ := onnx.LayerOf(n)
	x, out := input(n, lay.Data), output(n, 0)
	w := a.weight(n, lay.Weight)
	if w == nil || len(w.Dims) != 2 {
		a.opaque(n, "its weight is computed at run time")
		return
	}
	// K is A's axis kA and B's kW; the output units are B's nW.
	kA := lay.DataAxis(2)
	nW, kW, _ := lay.WeightAxes(2)
	if in := a.lay[x]; in != nil && (in.axis != kA || !a.mix(n, lay.Weight, kW, in)) {
		a.pin(x, in, fmt.Sprintf("%s: its channels are not the K axis of weight %v", a.label[n], w.Dims))
	}
	l := a.newSource(n, w, nW, 1)
	if c := input(n, lay.Bias); c != "" {
		cw := a.weight(n, lay.Bias)
		switch {
		case cw == nil:
			a.pin(out, l, fmt.Sprintf("%s: C is computed at run time", a.label[n]))
		case len(cw.Dims) == 0 || cw.Dims[len(cw.Dims)-1] == 1:
		case !a.slice(n, lay.Bias, len(cw.Dims)-1, l):
			a.pin(out, l, fmt.Sprintf("%s: C %v does not match %d units", a.label[n], cw.Dims, l.size()))
		}
	}
	a.lay[out] = l
}

// ruleMatMul: A x B with B a 2-D weight. B's columns are candidate output
// units; its rows follow A's last axis. When A's channels lie on another
// axis, MatMul keeps them there and B's units are not candidates.
func ruleMatMul(a *analysis, n *onnxpb.NodeProto) {
	lay, _ := onnx.LayerOf(n)
	x, out := input(n, lay.Data), output(n, 0)
	w := a.weight(n, lay.Weight)
	rA, rOut := a.rank(x), a.rank(out)
	if w == nil || len(w.Dims) != 2 || rA < 1 || rOut < 1 {
		a.opaque(n, "it multiplies computed tensors or a batched weight")
		return
	}
	nW, kW, _ := lay.WeightAxes(2)
	if in := a.lay[x]; in != nil {
		if in.axis != lay.DataAxis(rA) {
			// Rows (or batch) of A: MatMul keeps them where they are.
			a.lay[out] = in.withAxis(in.axis + rOut - rA)
			return
		}
		if !a.mix(n, lay.Weight, kW, in) {
			a.pin(x, in, fmt.Sprintf("%s: weight %v does not match %d input features", a.label[n], w.Dims, in.size()))
		}
	}
	a.lay[out] = a.newSource(n, w, nW, rOut-1)
}

// ruleNorm: BatchNormalization and InstanceNormalization scale, shift
// (and for BatchNormalization mean and variance) are per channel.
func ruleNorm(a *analysis, n *onnxpb.NodeProto) {
	x, out := input(n, 0), output(n, 0)
	in := a.lay[x]
	if in == nil {
		return
	}
	if in.axis != 1 {
		a.pin(x, in, fmt.Sprintf("%s normalizes axis 1, the channels are on axis %d", a.label[n], in.axis))
		return
	}
	params := 4
	if n.GetOpType() == "InstanceNormalization" {
		params = 2
	}
	for i := 1; i <= params; i++ {
		if !a.slice(n, i, 0, in) {
			a.pin(x, in, fmt.Sprintf("%s: parameter %q is not a weight of %d elements", a.label[n], input(n, i), in.size()))
			return
		}
	}
	for _, o := range n.GetOutput()[1:] {
		if o != "" && len(a.ix.Consumers[o]) > 0 {
			a.pin(x, in, fmt.Sprintf("%s: its training statistics are read", a.label[n]))
			return
		}
	}
	a.lay[out] = in
	a.passOrigin(x, out)
}

// convOperands reads what ruleConv and ruleConvTranspose share: the
// operator table's layer, the constant weight (a computed one makes the
// node opaque: ok is false) and its output- and input-channel axes, the
// group count, and the input's channel layout when the channels are on
// the data's channel axis (otherwise the input is pinned and in is nil).
func convOperands(a *analysis, n *onnxpb.NodeProto) (c convNode, ok bool) {
	c.Layer, _ = onnx.LayerOf(n)
	c.x = input(n, c.Data)
	c.w = a.weight(n, c.Weight)
	if c.w == nil {
		a.opaque(n, "its weight is computed at run time")
		return c, false
	}
	if c.outAxis, c.inAxis, ok = c.WeightAxes(len(c.w.Dims)); !ok {
		a.opaque(n, "its weight is computed at run time")
		return c, false
	}
	c.group = int64(c.Group)
	c.channels = c.DataAxis(len(c.w.Dims))
	if c.in = a.lay[c.x]; c.in != nil && c.in.axis != c.channels {
		a.pin(c.x, c.in, fmt.Sprintf("%s reads it with the channels on axis %d", a.label[n], c.in.axis))
		c.in = nil
	}
	return c, true
}

// convNode is what convOperands reads.
type convNode struct {
	onnx.Layer
	x               string
	w               *onnx.Weight
	outAxis, inAxis int
	channels        int // the channel axis of the data and the output
	group           int64
	in              *layout
}
