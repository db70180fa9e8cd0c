package quantize

import (
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// use is one node input that reads a tensor.
type use struct {
	graph *onnxpb.GraphProto
	node  *onnxpb.NodeProto
	input int
}

// constant is a tensor whose value is in the model (a dense or sparse
// initializer, or a Constant node, in the main graph or a subgraph), as
// runner/onnx's Weights finds it.
type constant struct {
	name  string
	graph *onnxpb.GraphProto
	w     *onnx.Weight
	// overridable: also a graph input, so a caller may feed another value.
	overridable bool
	// ready is the value read ahead (prefetcher) for the slot being
	// rewritten: tensor returns it instead of reading again.
	ready *fetched
}

func (c *constant) dtype() onnx.DataType { return c.w.DType }

func (c *constant) dims() []int64 { return c.w.Dims }

// tensor decodes the value (sparse weights come back dense).
func (c *constant) tensor() (*onnx.Tensor, error) {
	if f := c.ready; f != nil {
		return f.t, f.err
	}
	return c.w.Tensor()
}

// index is the model's graphs seen from the tensors: who produces and who
// reads each name, and which names are constants. Names are unique across
// a model and its subgraphs (the ONNX IR's SSA rule), so one index serves
// every graph.
type index struct {
	model    *onnx.Model
	graphs   []onnx.GraphRef
	consts   map[string]*constant
	uses     map[string][]use
	producer map[string]*onnxpb.NodeProto
	// graphOf is the graph a node belongs to.
	graphOf map[*onnxpb.NodeProto]*onnxpb.GraphProto
	// outputs are the outputs of any graph (main or subgraph).
	outputs map[string]bool
}

func newIndex(m *onnx.Model) *index {
	ix := &index{
		model: m, graphs: m.Graphs(),
		consts: map[string]*constant{}, uses: map[string][]use{},
		producer: map[string]*onnxpb.NodeProto{}, graphOf: map[*onnxpb.NodeProto]*onnxpb.GraphProto{},
		outputs: map[string]bool{},
	}
	inputs := map[*onnxpb.GraphProto]map[string]bool{}
	for _, ref := range ix.graphs {
		g := ref.Graph
		inputs[g] = map[string]bool{}
		for _, vi := range g.GetInput() {
			inputs[g][vi.GetName()] = true
		}
		for _, vi := range g.GetOutput() {
			ix.outputs[vi.GetName()] = true
		}
		for _, n := range g.GetNode() {
			ix.addNode(g, n)
		}
	}
	for _, w := range m.Weights() {
		g := w.Graph.Graph
		ix.consts[w.Name] = &constant{name: w.Name, graph: g, w: w, overridable: inputs[g][w.Name]}
	}
	return ix
}

func (ix *index) addNode(g *onnxpb.GraphProto, n *onnxpb.NodeProto) {
	ix.graphOf[n] = g
	for i, in := range n.GetInput() {
		if in != "" {
			ix.uses[in] = append(ix.uses[in], use{graph: g, node: n, input: i})
		}
	}
	for _, out := range n.GetOutput() {
		if out == "" {
			continue
		}
		ix.producer[out] = n
	}
}

// fresh returns a name not used anywhere in the model, and reserves it.
func (ix *index) fresh(base string) string { return ix.model.UniqueName(base) }

// floatConst returns the named constant if it is a float32 tensor.
func (ix *index) floatConst(name string) *constant {
	c := ix.consts[name]
	if c == nil || c.dtype() != onnx.Float {
		return nil
	}
	return c
}

// newNode makes a node; domain "" is ai.onnx.
func newNode(opType, domain, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := onnx.NewNode(opType, name, inputs, outputs, attrs...)
	if domain != "" {
		n.Domain = proto.String(domain)
	}
	return n
}
