package structured

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// graph is the main graph of the model being pruned, with what the rules
// need to know about it: the weights by name and the shape of every tensor
// from a run in ONNX Runtime.
type graph struct {
	m       *onnx.Model
	g       *onnxpb.GraphProto
	ix      *onnx.GraphIndex
	weights map[string]*onnx.Weight
	shapes  map[string][]int64
	// values holds small integer tensors (shapes, indices) as the probe
	// run computed them.
	values map[string]*onnx.Tensor
	opset  int64
	label  map[*onnxpb.NodeProto]string
}

func newGraph(m *onnx.Model, shapes map[string][]int64, values map[string]*onnx.Tensor) *graph {
	g := m.Proto.GetGraph()
	gr := &graph{m: m, g: g, ix: onnx.IndexGraph(g, ""), weights: map[string]*onnx.Weight{},
		shapes: shapes, values: values, opset: m.Opset(""), label: map[*onnxpb.NodeProto]string{}}
	for _, w := range m.Weights() {
		if w.Graph.Path == "" {
			gr.weights[w.Name] = w
		}
	}
	for i, n := range g.GetNode() {
		gr.label[n] = onnx.NodeLabel(n, i)
	}
	return gr
}

// weight returns the main-graph weight read at input i of n, or nil when
// that input is absent or computed.
func (gr *graph) weight(n *onnxpb.NodeProto, i int) *onnx.Weight {
	if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
		return nil
	}
	return gr.weights[n.GetInput()[i]]
}

// shape is a tensor's shape: a weight's dims, else the shape it had in the
// probe run; ok is false when neither is known.
func (gr *graph) shape(name string) ([]int64, bool) {
	if w := gr.weights[name]; w != nil {
		return w.Dims, true
	}
	s, ok := gr.shapes[name]
	return s, ok
}

// rank is a tensor's rank, -1 when unknown.
func (gr *graph) rank(name string) int {
	if s, ok := gr.shape(name); ok {
		return len(s)
	}
	return -1
}

// input returns n's input i, "" when absent.
func input(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

// output returns n's output i, "" when absent.
func output(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetOutput()) {
		return n.GetOutput()[i]
	}
	return ""
}

// setAttrInt sets (or adds) an INT attribute.
func setAttrInt(n *onnxpb.NodeProto, name string, v int64) {
	if a := onnx.FindAttr(n, name); a != nil {
		a.I = &v
		return
	}
	n.Attribute = append(n.Attribute, onnx.AttrInt(name, v))
}

// normAxis turns a possibly negative axis into an index below rank; ok is
// false when it is out of range.
func normAxis(axis int64, rank int) (int, bool) {
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), axis >= 0 && axis < int64(rank)
}

func prod(dims []int64) int64 {
	p := int64(1)
	for _, d := range dims {
		p *= d
	}
	return p
}
