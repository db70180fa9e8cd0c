package onnx

import (
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Reads lists the names a node reads, in order and once each: its inputs
// and the names its subgraphs capture from enclosing graphs.
func Reads(n *onnxpb.NodeProto) []string {
	var out []string
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	for _, in := range n.GetInput() {
		add(in)
	}
	for _, a := range n.GetAttribute() {
		for _, g := range attrGraphs(a) {
			captured := capturedUses(g, "")
			names := make([]string, 0, len(captured))
			for name := range captured {
				names = append(names, name)
			}
			sort.Strings(names)
			for _, name := range names {
				add(name)
			}
		}
	}
	return out
}

// Extract returns the model made of some nodes of m's main graph, in
// their order: inputs are fed, outputs returned; the initializers (dense
// and sparse) the nodes read come along. Tensors are shared with m, not
// copied, so a weight changed in m is seen by a later Extract (and the
// extracted model must not be edited); a streamed model's external
// tensors stay in its files. Opsets, IR version and local functions are
// m's. Outputs without a declared type in m are declared by name alone
// (ONNX Runtime infers them).
func (m *Model) Extract(nodes []*onnxpb.NodeProto, inputs []*onnxpb.ValueInfoProto, outputs []string) *Model {
	g := m.Proto.GetGraph()
	reads := map[string]bool{}
	for _, n := range nodes {
		for _, name := range Reads(n) {
			reads[name] = true
		}
	}
	sub := &onnxpb.GraphProto{Name: proto.String(g.GetName()), Node: nodes, Input: inputs}
	for _, t := range g.GetInitializer() {
		if reads[t.GetName()] {
			sub.Initializer = append(sub.Initializer, t)
		}
	}
	for _, st := range g.GetSparseInitializer() {
		if reads[st.GetValues().GetName()] {
			sub.SparseInitializer = append(sub.SparseInitializer, st)
		}
	}
	for _, name := range outputs {
		vi := &onnxpb.ValueInfoProto{Name: proto.String(name)}
		if known := FindValueInfo(g, name); known != nil && known.GetType() != nil {
			vi = known
		}
		sub.Output = append(sub.Output, vi)
	}
	p := &onnxpb.ModelProto{
		IrVersion: m.Proto.IrVersion, OpsetImport: m.Proto.GetOpsetImport(), Functions: m.Proto.GetFunctions(),
		ProducerName: m.Proto.ProducerName, Graph: sub,
	}
	out := &Model{Proto: p, Name: m.Name, src: m.src}
	out.everyTensor(func(tp *onnxpb.TensorProto) {
		if loc, ok := m.external[tp]; ok {
			out.markExternal(tp, loc)
		}
		if m.inline[tp] {
			out.markInline(tp)
		}
	})
	return out
}
