package layerwise

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// hoistSinks returns the graph's nodes in an order that is still
// topological, with each sink (a node whose outputs no node reads: an
// Identity naming a graph output, as exporters write present.N.key) moved
// right after the last producer of what it reads. Written at the end of
// the graph, a sink would keep its input alive across every block after
// the one that makes it (each layer's present keys and values), and no
// cut would fall between blocks.
func hoistSinks(g *onnxpb.GraphProto) []*onnxpb.NodeProto {
	nodes := g.GetNode()
	read := map[string]bool{}
	for _, n := range nodes {
		for _, in := range onnx.Reads(n) { // a subgraph's outer reads too
			read[in] = true
		}
	}
	sink := func(n *onnxpb.NodeProto) bool {
		for _, o := range n.GetOutput() {
			if o != "" && read[o] {
				return false
			}
		}
		return true
	}
	producer := map[string]int{}
	after := make([][]*onnxpb.NodeProto, len(nodes)+1) // sinks placed after node i-1
	for i, n := range nodes {
		if !sink(n) {
			for _, o := range n.GetOutput() {
				producer[o] = i + 1
			}
			continue
		}
		at := 0
		for _, in := range onnx.Reads(n) {
			at = max(at, producer[in])
		}
		after[at] = append(after[at], n)
	}
	out := append(make([]*onnxpb.NodeProto, 0, len(nodes)), after[0]...)
	for i, n := range nodes {
		if !sink(n) {
			out = append(out, n)
			out = append(out, after[i+1]...)
		}
	}
	return out
}
