package structured

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// analysis is the dependency graph over channels: which layers produce
// prunable channels (sources), where each tensor carries them (layouts),
// which channels are coupled or pinned (cls), and the edits that remove a
// channel from every tensor that carries it.
//
// Its invariant: a tensor without a layout keeps its shape whatever is
// removed (and a computed integer tensor its values). A rule that cannot
// give a node's output a layout must pin the channels of the node's
// inputs.
type analysis struct {
	*graph
	opts    Options
	cls     classes
	lay     map[string]*layout
	sources []*source
	edits   []edit
	// origin maps a tensor to the source whose channels it carries
	// unmixed (through per-channel operators only): the tensors entropy
	// scoring reads.
	origin    map[string]*source
	protected []Protection
	seen      map[Protection]bool
	excluded  map[string]bool
	exclOps   map[string]bool
}

// source is a layer whose output channels are candidates.
type source struct {
	node  *onnxpb.NodeProto
	label string
	// weight holds one filter per output channel along axis.
	weight *onnx.Weight
	axis   int
	ids    []int32
	out    string
}

type editKind int

const (
	// sliceWeight keeps, along axis of the weight read at input, the
	// positions of the kept channels of lay.
	sliceWeight editKind = iota
	// setValue sets element axis of the integer weight read at input
	// (a Reshape shape, Resize sizes) to the kept length of lay's axis.
	setValue
	// setGroup sets the node's group attribute to the kept size of lay
	// (depthwise convolutions).
	setGroup
)

type edit struct {
	kind editKind
	// mixing marks the input side of a layer that mixes channels (Conv,
	// ConvTranspose, Gemm, MatMul): the only places a removed channel's
	// values reach other channels.
	mixing bool
	node   *onnxpb.NodeProto
	input  int
	axis   int
	lay    *layout
}

func newAnalysis(gr *graph, opts Options) *analysis {
	a := &analysis{graph: gr, opts: opts, lay: map[string]*layout{}, origin: map[string]*source{},
		seen: map[Protection]bool{}, excluded: map[string]bool{}, exclOps: map[string]bool{}}
	for _, n := range opts.ExcludeNodes {
		a.excluded[n] = true
	}
	for _, op := range opts.ExcludeOpTypes {
		a.exclOps[op] = true
	}
	return a
}

// run walks the graph in order, applying each node's rule, then pins what
// must keep every channel: graph outputs and tensors read inside
// subgraphs.
func (a *analysis) run() {
	for _, n := range a.g.GetNode() {
		op := n.GetOpType()
		switch rule := rules[op]; {
		case op == "Constant" && onnx.IsDefaultDomain(n.GetDomain()):
		case a.excluded[n.GetName()] || a.exclOps[op]:
			a.opaque(n, "excluded by the options")
		case !onnx.IsDefaultDomain(n.GetDomain()):
			a.opaque(n, fmt.Sprintf("operator %s:%s is not one structured pruning rewrites", n.GetDomain(), op))
		case rule == nil:
			a.opaque(n, fmt.Sprintf("operator %s is not one structured pruning rewrites", op))
		default:
			rule(a, n)
		}
	}
	for _, o := range a.g.GetOutput() {
		if l := a.lay[o.GetName()]; l != nil {
			a.pin(o.GetName(), l, "graph output")
		}
	}
	for name, l := range a.lay {
		for _, u := range a.ix.Consumers[name] {
			if u.GraphPath != "" {
				a.pin(name, l, "read inside subgraph "+u.GraphPath)
				break
			}
		}
	}
}

// pin keeps every channel of l, recording the tensor and reason when that
// pinned a class that was free.
func (a *analysis) pin(tensor string, l *layout, reason string) {
	if l == nil {
		return
	}
	fresh := false
	for _, id := range l.ids {
		fresh = fresh || a.cls.pinned(id) == ""
	}
	if !fresh {
		return
	}
	a.cls.pinAll(l.ids, reason)
	p := Protection{Tensor: tensor, Reason: reason}
	if !a.seen[p] {
		a.seen[p] = true
		a.protected = append(a.protected, p)
	}
}

// opaque handles a node no rule rewrites: every channel it reads is kept,
// so its outputs keep their shapes and need no layout.
func (a *analysis) opaque(n *onnxpb.NodeProto, reason string) {
	for _, in := range n.GetInput() {
		if l := a.lay[in]; l != nil {
			a.pin(in, l, fmt.Sprintf("read by %s (%s)", a.label[n], reason))
		}
	}
}

// pinInputs pins the channels of n's tracked inputs with a reason
// specific to the node.
func (a *analysis) pinInputs(n *onnxpb.NodeProto, reason string) {
	for _, in := range n.GetInput() {
		if l := a.lay[in]; l != nil {
			a.pin(in, l, fmt.Sprintf("%s: %s", a.label[n], reason))
		}
	}
}

// fixed makes a pinned layout for an untracked tensor that must line up
// with tracked channels along axis (a Concat input, say); nil when its
// shape is unknown.
func (a *analysis) fixed(name string, axis int, reason string) *layout {
	s, ok := a.shape(name)
	if !ok || axis >= len(s) {
		return nil
	}
	return &layout{axis: axis, ids: a.cls.add(int(s[axis]), reason), block: 1}
}

// newSource registers n's output channels as candidates: weight w holds
// one filter per channel along axis; the output carries them along outAxis.
// A layer below opts.MinParams is registered with its channels pinned, so
// the report shows it and why it kept them.
func (a *analysis) newSource(n *onnxpb.NodeProto, w *onnx.Weight, axis, outAxis int) *layout {
	out := output(n, 0)
	reason := ""
	if a.opts.MinParams > 0 && int64(w.NumElements()) < a.opts.MinParams {
		reason = fmt.Sprintf("%s has fewer than minParams=%d parameters", a.label[n], a.opts.MinParams)
	}
	s := &source{node: n, label: a.label[n], weight: w, axis: axis, ids: a.cls.add(int(w.Dims[axis]), reason), out: out}
	a.sources = append(a.sources, s)
	a.origin[out] = s
	l := &layout{axis: outAxis, ids: s.ids, block: 1}
	lay, _ := onnx.LayerOf(n)
	a.slice(n, lay.Weight, axis, l)
	return l
}

// slice records that the weight at input i of n loses, along axis, the
// positions of l's removed channels. It fails (and the caller pins) when
// the weight does not have l.size() elements along axis.
func (a *analysis) slice(n *onnxpb.NodeProto, i, axis int, l *layout) bool {
	w := a.weight(n, i)
	if w == nil || axis < 0 || axis >= len(w.Dims) || w.Dims[axis] != int64(l.size()) {
		return false
	}
	a.edits = append(a.edits, edit{kind: sliceWeight, node: n, input: i, axis: axis, lay: l})
	return true
}

// mix is slice for the input side of a layer that mixes channels.
func (a *analysis) mix(n *onnxpb.NodeProto, i, axis int, l *layout) bool {
	if !a.slice(n, i, axis, l) {
		return false
	}
	a.edits[len(a.edits)-1].mixing = true
	return true
}

// passOrigin carries entropy's view of a source through a per-channel
// operator: out holds the same channels, unmixed, as in.
func (a *analysis) passOrigin(in, out string) {
	if s := a.origin[in]; s != nil {
		a.origin[out] = s
	}
}
