package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// editor collects changes to a model's graphs and applies them in one pass,
// so the index stays valid while a method decides what to do. New nodes go
// next to the node they serve, which keeps every graph in topological
// order: a Q right after the producer of its input, a DQ right before its
// consumer.
type editor struct {
	ix     *index
	before map[*onnxpb.NodeProto][]*onnxpb.NodeProto
	after  map[*onnxpb.NodeProto][]*onnxpb.NodeProto
	front  map[*onnxpb.GraphProto][]*onnxpb.NodeProto
	drop   map[*onnxpb.NodeProto]bool
	inits  map[*onnxpb.GraphProto][]*onnxpb.TensorProto
	// own collects the initializers the editor adds (scales, zero points,
	// quantized data), so reports can tell them from the model's weights.
	own map[string]bool
}

func newEditor(ix *index, own map[string]bool) *editor {
	return &editor{
		ix:     ix,
		own:    own,
		before: map[*onnxpb.NodeProto][]*onnxpb.NodeProto{},
		after:  map[*onnxpb.NodeProto][]*onnxpb.NodeProto{},
		front:  map[*onnxpb.GraphProto][]*onnxpb.NodeProto{},
		drop:   map[*onnxpb.NodeProto]bool{},
		inits:  map[*onnxpb.GraphProto][]*onnxpb.TensorProto{},
	}
}

// addInit adds an initializer named after base (made unique) to g and
// returns its name.
func (e *editor) addInit(g *onnxpb.GraphProto, base string, t *onnx.Tensor) (string, error) {
	return e.addProto(g, base, t, onnx.TensorToProto)
}

// addShared is addInit for a large tensor made for it (a quantized
// weight), whose memory becomes the initializer's raw_data instead of
// being copied (onnx.TensorToProtoShared): t's data must not change after.
func (e *editor) addShared(g *onnxpb.GraphProto, base string, t *onnx.Tensor) (string, error) {
	return e.addProto(g, base, t, onnx.TensorToProtoShared)
}

func (e *editor) addProto(g *onnxpb.GraphProto, base string, t *onnx.Tensor, encode func(*onnx.Tensor, string) (*onnxpb.TensorProto, error)) (string, error) {
	name := e.ix.fresh(base)
	tp, err := encode(t, name)
	if err != nil {
		return "", err
	}
	e.inits[g] = append(e.inits[g], tp)
	if e.own != nil {
		e.own[name] = true
	}
	return name, nil
}

// insertBefore places nodes right before n.
func (e *editor) insertBefore(n *onnxpb.NodeProto, nodes ...*onnxpb.NodeProto) {
	e.before[n] = append(e.before[n], nodes...)
}

// insertAfterProducer places nodes right after the node producing name, or
// at the front of the main graph when name is a graph input or constant.
func (e *editor) insertAfterProducer(name string, nodes ...*onnxpb.NodeProto) {
	if p := e.ix.producer[name]; p != nil {
		e.after[p] = append(e.after[p], nodes...)
		return
	}
	g := e.ix.model.Proto.GetGraph()
	if c := e.ix.consts[name]; c != nil {
		g = c.graph
	}
	e.front[g] = append(e.front[g], nodes...)
}

// remove drops a node.
func (e *editor) remove(n *onnxpb.NodeProto) { e.drop[n] = true }

// apply rewrites every graph's node and initializer lists.
func (e *editor) apply() {
	for _, ref := range e.ix.graphs {
		g := ref.Graph
		nodes := make([]*onnxpb.NodeProto, 0, len(g.GetNode())+len(e.front[g]))
		nodes = append(nodes, e.front[g]...)
		for _, n := range g.GetNode() {
			nodes = append(nodes, e.before[n]...)
			if !e.drop[n] {
				nodes = append(nodes, n)
			}
			nodes = append(nodes, e.after[n]...)
		}
		g.Node = nodes
		g.Initializer = append(g.Initializer, e.inits[g]...)
	}
}

// removeDeadConstants deletes initializers and Constant nodes nothing reads
// any more (the float weights that were replaced), with their graph-input
// entries.
func removeDeadConstants(m *onnx.Model) {
	ix := newIndex(m)
	dead := map[string]bool{}
	for name := range ix.consts {
		if len(ix.uses[name]) == 0 && !ix.outputs[name] {
			dead[name] = true
		}
	}
	if len(dead) == 0 {
		return
	}
	for _, ref := range ix.graphs {
		g := ref.Graph
		inits := g.Initializer[:0]
		for _, t := range g.Initializer {
			if !dead[t.GetName()] {
				inits = append(inits, t)
			}
		}
		g.Initializer = inits
		sparse := g.SparseInitializer[:0]
		for _, st := range g.SparseInitializer {
			if !dead[st.GetValues().GetName()] {
				sparse = append(sparse, st)
			}
		}
		g.SparseInitializer = sparse
		inputs := g.Input[:0]
		for _, vi := range g.Input {
			if !dead[vi.GetName()] {
				inputs = append(inputs, vi)
			}
		}
		g.Input = inputs
		nodes := g.Node[:0]
		for _, n := range g.Node {
			if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 && dead[n.GetOutput()[0]] {
				continue
			}
			nodes = append(nodes, n)
		}
		g.Node = nodes
	}
}
