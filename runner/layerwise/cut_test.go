package layerwise

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// graph builds a main graph of nodes (weights are the initializers w1,
// w2, w3), with input x and output y.
func graph(nodes ...*onnxpb.NodeProto) *onnxpb.GraphProto {
	g := &onnxpb.GraphProto{Node: nodes,
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, nil)},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, nil)}}
	for _, w := range []string{"w1", "w2", "w3"} {
		g.Initializer = append(g.Initializer, &onnxpb.TensorProto{Name: proto.String(w)})
	}
	return g
}

// withOutput adds the graph output name.
func withOutput(g *onnxpb.GraphProto, name string) *onnxpb.GraphProto {
	g.Output = append(g.Output, onnx.ValueInfo(name, onnx.Float, nil))
	return g
}

// node makes a node named after its one output.
func node(op, out string, in ...string) *onnxpb.NodeProto {
	return onnx.NewNode(op, out, in, []string{out})
}

// TestCut cuts small graphs: the cuts fall where one tensor a layer
// changes is alive, tensors no layer changes are carried (a bias read by
// every block), a weight read twice keeps its nodes in one segment, a
// graph output is returned by the segment that makes it (not carried),
// and a graph with no such point between two layers has no plan.
func TestCut(t *testing.T) {
	type seg struct {
		Nodes, Inputs, Live, Outputs []string
		Layers                       []int
	}
	for _, tc := range []struct {
		name   string
		g      *onnxpb.GraphProto
		layers [][]string // node names of each layer
		want   []seg
		why    string
	}{{
		name: "residual blocks sharing a bias",
		g: graph(node("Neg", "b", "x"), node("MatMul", "h1", "x", "w1"), node("Add", "r1", "h1", "b"), node("Add", "x1", "x", "r1"),
			node("MatMul", "h2", "x1", "w2"), node("Add", "r2", "h2", "b"), node("Add", "y", "x1", "r2")),
		layers: [][]string{{"h1"}, {"h2"}},
		want: []seg{
			{Nodes: []string{"b", "h1", "r1", "x1"}, Inputs: []string{"x"}, Live: []string{"b", "x1"}, Outputs: []string{"b", "x1"}, Layers: []int{0}},
			{Nodes: []string{"h2", "r2", "y"}, Inputs: []string{"x1", "b"}, Outputs: []string{"y"}, Layers: []int{1}},
		},
	}, {
		name:   "a weight read twice",
		g:      graph(node("MatMul", "a", "x", "w1"), node("MatMul", "b", "a", "w2"), node("MatMul", "y", "b", "w1")),
		layers: [][]string{{"a", "y"}, {"b"}},
		why:    "no cut between its 2 layers: every point between them has several tensors a layer changes alive",
	}, {
		name: "two layer outputs alive",
		g: graph(node("MatMul", "a", "x", "w1"), node("MatMul", "b", "x", "w2"), node("Add", "c", "a", "b"),
			node("MatMul", "y", "c", "w3")),
		layers: [][]string{{"a"}, {"b"}, {"y"}},
		want: []seg{
			{Nodes: []string{"a"}, Inputs: []string{"x"}, Live: []string{"x", "a"}, Outputs: []string{"a"}, Layers: []int{0}},
			{Nodes: []string{"b", "c"}, Inputs: []string{"x", "a"}, Live: []string{"c"}, Outputs: []string{"c"}, Layers: []int{1}},
			{Nodes: []string{"y"}, Inputs: []string{"c"}, Outputs: []string{"y"}, Layers: []int{2}},
		},
	}, {
		// A decoder's present keys: a graph output made in the first
		// block, written (Identity) at the end of the graph.
		name: "a graph output of an early block",
		g: withOutput(graph(node("MatMul", "h1", "x", "w1"), node("Add", "x1", "x", "h1"), node("MatMul", "h2", "x1", "w2"),
			node("Add", "y", "x1", "h2"), node("Identity", "present", "h1")), "present"),
		layers: [][]string{{"h1"}, {"h2"}},
		want: []seg{
			{Nodes: []string{"h1", "present", "x1"}, Inputs: []string{"x"}, Live: []string{"x1"}, Outputs: []string{"present", "x1"}, Layers: []int{0}},
			{Nodes: []string{"h2", "y"}, Inputs: []string{"x1"}, Outputs: []string{"y"}, Layers: []int{1}},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			byName := map[string]*onnxpb.NodeProto{}
			for _, n := range tc.g.GetNode() {
				byName[n.GetName()] = n
			}
			layers := make([][]*onnxpb.NodeProto, len(tc.layers))
			for i, names := range tc.layers {
				for _, n := range names {
					layers[i] = append(layers[i], byName[n])
				}
			}
			plan, why := Cut(tc.g, layers)
			if why != tc.why {
				t.Fatalf("reason %q, want %q", why, tc.why)
			}
			var got []seg
			if plan != nil {
				for _, s := range plan.Segments {
					g := seg{Inputs: s.Inputs, Live: s.Live, Outputs: s.Outputs, Layers: s.Layers}
					for _, n := range s.Nodes {
						g.Nodes = append(g.Nodes, n.GetName())
					}
					got = append(got, g)
				}
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("segments (-want +got):\n%s", d)
			}
		})
	}
}
