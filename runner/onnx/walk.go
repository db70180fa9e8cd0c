package onnx

import (
	"fmt"
	"strconv"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// GraphRef is a graph of the model and where it sits: the main graph has
// Path "" and no Owner; a subgraph has the node and attribute that hold it.
type GraphRef struct {
	Graph *onnxpb.GraphProto
	// Path names the graph for messages: "" for the main graph, else the
	// chain of node names and attributes, e.g. "loop_1/body/if_3/then_branch".
	Path string
	// Owner is the node whose attribute holds the graph (nil for main).
	Owner *onnxpb.NodeProto
	// Attr is the attribute name on Owner (then_branch, body, ...).
	Attr string
	// Parent is the enclosing graph (nil for main).
	Parent *onnxpb.GraphProto
}

// Graphs lists the main graph and every subgraph held in node attributes
// (If branches, Loop and Scan bodies, any GRAPH/GRAPHS attribute),
// recursively, parents before children.
func (m *Model) Graphs() []GraphRef {
	if m.Proto.GetGraph() == nil {
		return nil
	}
	var out []GraphRef
	var visit func(ref GraphRef)
	visit = func(ref GraphRef) {
		out = append(out, ref)
		for i, n := range ref.Graph.GetNode() {
			for _, a := range n.GetAttribute() {
				subs := a.GetGraphs()
				if a.G != nil {
					subs = append([]*onnxpb.GraphProto{a.G}, subs...)
				}
				for _, sg := range subs {
					visit(GraphRef{Graph: sg, Path: joinPath(ref.Path, NodeLabel(n, i)+"/"+a.GetName()), Owner: n, Attr: a.GetName(), Parent: ref.Graph})
				}
			}
		}
	}
	visit(GraphRef{Graph: m.Proto.GetGraph()})
	return out
}

func joinPath(parent, child string) string {
	if parent == "" {
		return child
	}
	return parent + "/" + child
}

// NodeLabel names a node for messages: its name, or op type and index when
// it has none.
func NodeLabel(n *onnxpb.NodeProto, index int) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	return n.GetOpType() + "#" + itoa(index)
}

func itoa(i int) string { return strconv.Itoa(i) }

// Label names a node for reports where its position is not at hand: its
// name, else its op type and outputs ("Conv([y])"). Quantization also
// derives names of the nodes it adds from it, so its form is part of the
// models written.
func Label(n *onnxpb.NodeProto) string {
	if n.GetName() != "" {
		return n.GetName()
	}
	return fmt.Sprintf("%s(%v)", n.GetOpType(), n.GetOutput())
}

// everyTensor calls f for every TensorProto stored anywhere in the model:
// initializers, sparse initializers, attribute tensors of nodes in every
// graph and function, training graphs.
func (m *Model) everyTensor(f func(*onnxpb.TensorProto)) {
	var graph func(g *onnxpb.GraphProto)
	var nodes func(ns []*onnxpb.NodeProto)
	sparse := func(st *onnxpb.SparseTensorProto) {
		if st.GetValues() != nil {
			f(st.Values)
		}
		if st.GetIndices() != nil {
			f(st.Indices)
		}
	}
	nodes = func(ns []*onnxpb.NodeProto) {
		for _, n := range ns {
			for _, a := range n.GetAttribute() {
				if a.T != nil {
					f(a.T)
				}
				for _, t := range a.GetTensors() {
					f(t)
				}
				if a.SparseTensor != nil {
					sparse(a.SparseTensor)
				}
				for _, st := range a.GetSparseTensors() {
					sparse(st)
				}
				if a.G != nil {
					graph(a.G)
				}
				for _, g := range a.GetGraphs() {
					graph(g)
				}
			}
		}
	}
	graph = func(g *onnxpb.GraphProto) {
		if g == nil {
			return
		}
		for _, t := range g.GetInitializer() {
			f(t)
		}
		for _, st := range g.GetSparseInitializer() {
			sparse(st)
		}
		nodes(g.GetNode())
	}
	graph(m.Proto.GetGraph())
	for _, ti := range m.Proto.GetTrainingInfo() {
		graph(ti.GetInitialization())
		graph(ti.GetAlgorithm())
	}
	for _, fn := range m.Proto.GetFunctions() {
		nodes(fn.GetNode())
	}
}
