package prune

import (
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Reason says why a floating-point weight was left dense.
type Reason string

// Why weights are left dense.
const (
	ReasonBias           Reason = "bias"
	ReasonNormalization  Reason = "normalization parameter"
	ReasonNotWeight      Reason = "not the weight input of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU or RNN"
	ReasonShared         Reason = "shared with a use that is not a prunable weight"
	ReasonGraphOutput    Reason = "a graph output"
	ReasonUnused         Reason = "read by no node"
	ReasonExcludedNode   Reason = "excluded by node name"
	ReasonExcludedOpType Reason = "excluded by op type"
	ReasonNotFloat       Reason = "not a float32, float16 or bfloat16 tensor"
	ReasonShape          Reason = "weight shape not supported"
	ReasonMixedLayouts   Reason = "read by operators that see it in different layouts"
	ReasonMinParams      Reason = "fewer elements than prune.minParams"
	ReasonNoCalibration  Reason = "its layer's inputs cannot be calibrated"
	ReasonComputed       Reason = "weight computed at run time, not from constants alone"
	ReasonTied           Reason = "tied to another node's weight (a head reading the embedding): a pruned copy would be stored beside the dense one"
)

// prunableLayer returns the operator table's layer of a node whose weight
// prune handles: a float operator of a kind with a layout (layouts).
func prunableLayer(n *onnxpb.NodeProto) (onnx.Layer, bool) {
	l, ok := onnx.LayerOf(n)
	return l, ok && !l.Quantized && layouts[l.Kind] != nil
}

// normalizations read per-channel parameters from inputs 1 and up.
var normalizations = map[string]bool{
	"BatchNormalization": true, "InstanceNormalization": true,
	"LayerNormalization": true, "GroupNormalization": true,
}

// target is a weight to prune and the nodes that read it as their weight.
type target struct {
	w    *onnx.Weight
	uses []layerUse
	lay  *layout
}

// layerUse is a node that reads a target as its weight input.
type layerUse struct {
	node *onnxpb.NodeProto
	// graph is the path of the graph holding node ("" for the main graph).
	graph string
	// dims is the weight's shape as node reads it (after Reshape/Flatten).
	dims []int64
}

func (t *target) opType() string { return t.uses[0].node.GetOpType() }
func (t *target) nodeName() string {
	n := t.uses[0].node
	if n.GetName() != "" {
		return n.GetName()
	}
	return n.GetOpType() + "(" + t.w.Name + ")"
}

// finder decides which weights of a model are prunable.
type finder struct {
	o       *options
	indexes map[string]*onnx.GraphIndex
	weights map[string]*onnx.Weight
}

// findTargets splits the model's floating-point weights into the ones to
// prune and the ones left dense, with the reason. Integer weights (shapes,
// indices) are neither.
func findTargets(m *onnx.Model, o *options) ([]*target, []Skipped) {
	f := &finder{o: o, indexes: map[string]*onnx.GraphIndex{}, weights: map[string]*onnx.Weight{}}
	for _, g := range m.Graphs() {
		f.indexes[g.Path] = onnx.IndexGraph(g.Graph, g.Path)
	}
	all := m.Weights()
	for _, w := range all {
		f.weights[w.Name] = w
	}
	var targets []*target
	var skipped []Skipped
	for _, w := range all {
		if !onnx.IsFloat(w.DType) {
			continue
		}
		t, s := f.classify(w)
		if s != nil {
			skipped = append(skipped, *s)
			continue
		}
		targets = append(targets, t)
	}
	return targets, skipped
}

// walk collects the uses of one weight.
type walk struct {
	good []layerUse
	// bad is the first use that is not a prunable weight input.
	bad       Reason
	badDetail string
	badNode   *onnxpb.NodeProto
	count     int
}

func (r *walk) reject(reason Reason, n *onnxpb.NodeProto, detail string) {
	if r.bad == "" {
		r.bad, r.badNode, r.badDetail = reason, n, detail
	}
}

func (f *finder) classify(w *onnx.Weight) (*target, *Skipped) {
	skip := func(reason Reason, n *onnxpb.NodeProto, detail string) (*target, *Skipped) {
		s := &Skipped{Name: w.Name, Params: int64(w.NumElements()), Reason: reason, Detail: detail}
		if n != nil {
			s.Node, s.OpType = onnx.Label(n), n.GetOpType()
		}
		return nil, s
	}
	idx := f.indexes[w.Graph.Path]
	if idx != nil && idx.Output[w.Name] != nil {
		return skip(ReasonGraphOutput, nil, "")
	}
	r := &walk{}
	f.follow(w.Dims, w.Uses, r)
	switch {
	case r.count == 0:
		return skip(ReasonUnused, nil, "")
	case r.bad != "" && len(r.good) == 0:
		return skip(r.bad, r.badNode, r.badDetail)
	case r.bad != "":
		return skip(ReasonShared, r.badNode, fmt.Sprintf("also read by %s (%s)", onnx.Label(r.badNode), r.bad))
	}
	first := r.good[0].node
	for _, u := range r.good {
		if f.o.excludeNodes[u.node.GetName()] {
			return skip(ReasonExcludedNode, u.node, "")
		}
		if f.o.excludeOps[u.node.GetOpType()] {
			return skip(ReasonExcludedOpType, u.node, "")
		}
	}
	if f.o.excludeNodes[w.Name] || (w.Node != nil && f.o.excludeNodes[w.Node.GetName()]) {
		return skip(ReasonExcludedNode, first, "the weight or its Constant node is excluded")
	}
	if w.DType != onnx.Float && w.DType != onnx.Float16 && w.DType != onnx.BFloat16 {
		return skip(ReasonNotFloat, first, w.DType.String())
	}
	var lay *layout
	var key string
	for _, u := range r.good {
		l, err := newLayout(u.node, u.dims)
		if err != nil {
			return skip(ReasonShape, u.node, err.Error())
		}
		ul, _ := onnx.LayerOf(u.node)
		out, in, _ := ul.WeightAxes(len(u.dims))
		k := fmt.Sprint(u.node.GetOpType(), u.dims, ul.Group, out, in)
		if lay != nil && k != key {
			return skip(ReasonMixedLayouts, u.node, fmt.Sprintf("%s and %s", onnx.Label(first), onnx.Label(u.node)))
		}
		lay, key = l, k
	}
	if int64(w.NumElements()) < f.o.minParams {
		return skip(ReasonMinParams, first, fmt.Sprintf("%d < %d", w.NumElements(), f.o.minParams))
	}
	return &target{w: w, uses: r.good, lay: lay}, nil
}

// follow visits the uses of a tensor holding the weight's data (dims as
// the reader sees them), through Identity, Reshape and Flatten, which keep
// the data in the same order.
func (f *finder) follow(dims []int64, uses []onnx.Use, r *walk) {
	for _, u := range uses {
		r.count++
		n := u.Node
		op := n.GetOpType()
		if d := n.GetDomain(); !onnx.IsDefaultDomain(d) {
			r.reject(ReasonNotWeight, n, fmt.Sprintf("%s:%s input %d", d, op, u.Input))
			continue
		}
		l, layer := prunableLayer(n)
		switch {
		case layer && slices.Contains(l.Weights(), u.Input):
			r.good = append(r.good, layerUse{node: n, graph: u.GraphPath, dims: dims})
		case layer && u.Input == l.Bias:
			r.reject(ReasonBias, n, fmt.Sprintf("%s input %d", op, u.Input))
		case (op == "Identity" || op == "Reshape" || op == "Flatten") && u.Input == 0:
			out, err := f.reshaped(n, dims)
			if err != nil {
				r.reject(ReasonNotWeight, n, err.Error())
				continue
			}
			idx := f.indexes[u.GraphPath]
			name := n.GetOutput()[0]
			if idx.Output[name] != nil {
				r.reject(ReasonGraphOutput, n, fmt.Sprintf("through %s output %q", op, name))
				continue
			}
			f.follow(out, idx.Consumers[name], r)
		case normalizations[op] && u.Input > 0:
			r.reject(ReasonNormalization, n, fmt.Sprintf("%s input %d", op, u.Input))
		case op == "Add" && f.addsToLayer(n, u):
			r.reject(ReasonBias, n, "Add after "+f.indexes[u.GraphPath].Producer[n.GetInput()[1-u.Input]].GetOpType())
		default:
			r.reject(ReasonNotWeight, n, fmt.Sprintf("%s input %d", op, u.Input))
		}
	}
}

// addsToLayer reports whether an Add adds the weight to the output of a
// prunable operator: a bias kept as a separate node.
func (f *finder) addsToLayer(n *onnxpb.NodeProto, u onnx.Use) bool {
	if len(n.GetInput()) != 2 || u.Input > 1 {
		return false
	}
	p := f.indexes[u.GraphPath].Producer[n.GetInput()[1-u.Input]]
	if p == nil {
		return false
	}
	_, ok := prunableLayer(p)
	return ok
}

// reshaped is the shape of a reshaping node's output given its input's.
func (f *finder) reshaped(n *onnxpb.NodeProto, dims []int64) ([]int64, error) {
	switch n.GetOpType() {
	case "Identity":
		return dims, nil
	case "Flatten":
		axis := int(onnx.IntAttr(n, "axis", 1))
		if axis < 0 {
			axis += len(dims)
		}
		if axis < 0 || axis > len(dims) {
			return nil, fmt.Errorf("Flatten axis %d of a rank-%d weight", axis, len(dims))
		}
		return []int64{int64(onnx.NumElements(dims[:axis])), int64(onnx.NumElements(dims[axis:]))}, nil
	}
	shape, _ := onnx.IntsAttr(n, "shape") // Reshape-1 had the shape as an attribute
	if in := n.GetInput(); len(in) > 1 {
		w := f.weights[in[1]]
		if w == nil {
			return nil, fmt.Errorf("Reshape %s: the shape %q is computed at run time", onnx.Label(n), in[1])
		}
		t, err := w.Tensor()
		if err != nil {
			return nil, err
		}
		s, ok := t.Data.([]int64)
		if !ok {
			return nil, fmt.Errorf("Reshape %s: shape %q is %v, expected INT64", onnx.Label(n), in[1], t.DType)
		}
		shape = s
	}
	return onnx.ReshapeDims(dims, shape, onnx.IntAttr(n, "allowzero", 0) != 0)
}
