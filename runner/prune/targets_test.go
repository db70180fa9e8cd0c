package prune

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// zoo is a small model with a weight of every kind prune meets: a Conv
// with its bias, BatchNormalization, a depthwise Conv whose weight is a
// Constant node, a Gemm with transB, a MatMul weight behind a Reshape, a
// bias added by a separate Add, a weight shared by a MatMul and an Add, a
// MatMul to exclude, a small weight, and weights inside If branches.
func zoo(t testing.TB) *onnx.Model {
	b := newBuilder("zoo")
	b.Input("X", 1, 4, 6, 6)
	b.InputOf("flag", onnx.Bool)
	b.weight("Wc", 6, 4, 3, 3)
	b.weight("Bc", 6)
	b.NamedNode("Conv", "conv", []string{"X", "Wc", "Bc"}, []string{"C1"}, onnx.AttrInts("pads", 1, 1, 1, 1))
	for _, p := range []string{"bn_scale", "bn_bias", "bn_mean"} {
		b.weight(p, 6)
	}
	b.Init("bn_var", onnx.NewTensor([]int64{6}, []float32{1, 2, 1, 2, 1, 2}))
	b.NamedNode("BatchNormalization", "bn", []string{"C1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, []string{"C2"})
	b.NamedNode("Relu", "relu", []string{"C2"}, []string{"C3"})
	b.constant("Wdw", 6, 1, 3, 3)
	b.NamedNode("Conv", "dw", []string{"C3", "Wdw"}, []string{"C4"}, onnx.AttrInt("group", 6), onnx.AttrInts("pads", 1, 1, 1, 1))
	b.NamedNode("Flatten", "flat", []string{"C4"}, []string{"F"})
	b.weight("Wg", 10, 216)
	b.weight("Cg", 10)
	b.NamedNode("Gemm", "fc", []string{"F", "Wg", "Cg"}, []string{"G"}, onnx.AttrInt("transB", 1))
	b.weight("Wm", 2, 5, 4)
	b.Init("shape", onnx.NewTensor([]int64{2}, []int64{10, 4}))
	b.NamedNode("Reshape", "reshape_w", []string{"Wm", "shape"}, []string{"Wm_2d"})
	b.NamedNode("MatMul", "mm", []string{"G", "Wm_2d"}, []string{"M"})
	b.weight("Bm", 4)
	b.NamedNode("Add", "add_bias", []string{"M", "Bm"}, []string{"A1"})
	b.weight("Wm2", 4, 4)
	b.NamedNode("MatMul", "mm2", []string{"A1", "Wm2"}, []string{"M2"})
	b.NamedNode("Add", "add2", []string{"M2", "Wm2"}, []string{"S"})
	b.weight("We", 4, 4)
	b.NamedNode("MatMul", "keep_me", []string{"S", "We"}, []string{"K"})
	b.weight("Ws", 4, 2)
	b.NamedNode("MatMul", "small", []string{"K", "Ws"}, []string{"Y"})
	branch := func(name, w string) *onnxpb.GraphProto {
		s := newBuilder(name)
		s.weight(w, 10, 3)
		return s.Graph(s.NamedNode("MatMul", name+"_mm", []string{"G", w}, []string{name + "_out"}))
	}
	b.NamedNode("If", "if", []string{"flag"}, []string{"Z"},
		onnx.AttrGraph("then_branch", branch("then", "Wt")), onnx.AttrGraph("else_branch", branch("else", "Wf")))
	return b.Model(13, "Y", "Z")
}

func TestFindTargets(t *testing.T) {
	o, err := Options{Method: Magnitude, Sparsity: 0.5, MinParams: 9,
		ExcludeNodes: []string{"keep_me"}}.parse()
	if err != nil {
		t.Fatal(err)
	}
	targets, skipped := findTargets(zoo(t), o)
	type got struct {
		Name, Node, Op string
		Rows, Cols     int
		Groups         int
	}
	var gotTargets []got
	for _, tg := range targets {
		gotTargets = append(gotTargets, got{tg.w.Name, tg.nodeName(), tg.opType(), tg.lay.rows, tg.lay.cols, tg.lay.groups})
	}
	// Initializers come before Constant nodes, the main graph before
	// subgraphs. Conv columns are (kernel position, input channel); a depthwise
	// Conv is 6 groups of one output row; Gemm with transB has output
	// units as rows; the Reshape shows the MatMul [10, 4].
	want := []got{
		{"Wc", "conv", "Conv", 6, 36, 1},
		{"Wg", "fc", "Gemm", 10, 216, 1},
		{"Wm", "mm", "MatMul", 4, 10, 1},
		{"Wdw", "dw", "Conv", 1, 9, 6},
		{"Wt", "then_mm", "MatMul", 3, 10, 1},
		{"Wf", "else_mm", "MatMul", 3, 10, 1},
	}
	if diff := cmp.Diff(want, gotTargets); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	wantSkipped := []Skipped{
		{Name: "Bc", Node: "conv", OpType: "Conv", Params: 6, Reason: ReasonBias, Detail: "Conv input 2"},
		{Name: "bn_scale", Node: "bn", OpType: "BatchNormalization", Params: 6, Reason: ReasonNormalization, Detail: "BatchNormalization input 1"},
		{Name: "bn_bias", Node: "bn", OpType: "BatchNormalization", Params: 6, Reason: ReasonNormalization, Detail: "BatchNormalization input 2"},
		{Name: "bn_mean", Node: "bn", OpType: "BatchNormalization", Params: 6, Reason: ReasonNormalization, Detail: "BatchNormalization input 3"},
		{Name: "bn_var", Node: "bn", OpType: "BatchNormalization", Params: 6, Reason: ReasonNormalization, Detail: "BatchNormalization input 4"},
		{Name: "Cg", Node: "fc", OpType: "Gemm", Params: 10, Reason: ReasonBias, Detail: "Gemm input 2"},
		{Name: "Bm", Node: "add_bias", OpType: "Add", Params: 4, Reason: ReasonBias, Detail: "Add after MatMul"},
		{Name: "Wm2", Node: "add2", OpType: "Add", Params: 16, Reason: ReasonShared, Detail: "also read by add2 (bias)"},
		{Name: "We", Node: "keep_me", OpType: "MatMul", Params: 16, Reason: ReasonExcludedNode},
		{Name: "Ws", Node: "small", OpType: "MatMul", Params: 8, Reason: ReasonMinParams, Detail: "8 < 9"},
	}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// TestExcludeOpType leaves every MatMul dense, whatever holds its weight.
func TestExcludeOpType(t *testing.T) {
	o, err := Options{Method: Magnitude, Sparsity: 0.5,
		ExcludeOpTypes: []string{"MatMul", "Gemm"}}.parse()
	if err != nil {
		t.Fatal(err)
	}
	targets, skipped := findTargets(zoo(t), o)
	var names []string
	for _, tg := range targets {
		names = append(names, tg.w.Name)
	}
	if diff := cmp.Diff([]string{"Wc", "Wdw"}, names); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
	excluded := map[string]bool{}
	for _, s := range skipped {
		if s.Reason == ReasonExcludedOpType {
			excluded[s.Name] = true
		}
	}
	want := map[string]bool{"Wg": true, "Wm": true, "We": true, "Ws": true, "Wt": true, "Wf": true}
	if diff := cmp.Diff(want, excluded); diff != "" {
		t.Errorf("excluded by op type (-want +got):\n%s", diff)
	}
}

// TestTableLayers: the operator table places weights and channels; prune
// handles the kinds it has a layout for (a recurrent layer's W and R
// among them, one matrix per direction) and leaves the table's other
// kinds (embeddings) dense, as not a prunable weight.
func TestTableLayers(t *testing.T) {
	b := newBuilder("layers")
	b.Input("X", 1, 4, 5, 5)
	b.Input("S", 3, 1, 8)
	b.InputOf("I", onnx.Int64, 2)
	// ConvTranspose [C, M/group, k...] with 2 groups: per group, rows are
	// (output channel, kernel position), columns the group's input channels.
	b.weight("Wct", 4, 3, 2, 2)
	b.NamedNode("ConvTranspose", "up", []string{"X", "Wct"}, []string{"U"}, onnx.AttrInt("group", 2))
	b.weight("W", 2, 16, 8)
	b.weight("R", 2, 16, 4)
	b.weight("B", 2, 32)
	b.NamedNode("LSTM", "lstm", []string{"S", "W", "R", "B"}, []string{"H"}, onnx.AttrInt("hidden_size", 4), onnx.AttrString("direction", "bidirectional"))
	b.weight("E", 10, 6)
	b.NamedNode("Gather", "embed", []string{"E", "I"}, []string{"G"})
	o, err := Options{Method: Magnitude, Sparsity: 0.5}.parse()
	if err != nil {
		t.Fatal(err)
	}
	targets, skipped := findTargets(b.Model(14, "U", "H", "G"), o)
	type shape struct {
		Name                     string
		Groups, Rows, Cols, Span int
		Kernel                   int
	}
	var got []shape
	for _, tg := range targets {
		l := tg.lay
		got = append(got, shape{tg.w.Name, l.groups, l.rows, l.cols, l.span, len(l.kernel)})
	}
	want := []shape{
		{"Wct", 2, 3 * 4, 2, 2, 2},
		{"W", 2, 16, 8, 8, 0}, // per direction: 4 gates x 4 units reading 8 inputs
		{"R", 2, 16, 4, 4, 0}, // ... reading the 4 hidden units
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("targets' layouts (-want +got):\n%s", diff)
	}
	// Element (group 1, row 5 = output channel 1 at kernel position 1,
	// column 0 = input channel 2) is Wct[2, 1, 0, 1].
	if got, want := targets[0].lay.at(1, 5, 0), ((2*3+1)*2+0)*2+1; got != want {
		t.Errorf("ConvTranspose layout at(1, 5, 0) = %d, want %d", got, want)
	}
	// Element (direction 1, gate row 3, input 7) is W[1, 3, 7].
	if got, want := targets[1].lay.at(1, 3, 7), (1*16+3)*8+7; got != want {
		t.Errorf("LSTM W layout at(1, 3, 7) = %d, want %d", got, want)
	}
	wantSkipped := []Skipped{
		{Name: "B", Node: "lstm", OpType: "LSTM", Params: 64, Reason: ReasonBias, Detail: "LSTM input 3"},
		{Name: "E", Node: "embed", OpType: "Gather", Params: 60, Reason: ReasonNotWeight, Detail: "Gather input 0"},
	}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}

// TestRecurrentLayoutRejects: a recurrent weight whose shape disagrees with
// the node's direction or hidden_size is left dense with the reason.
func TestRecurrentLayoutRejects(t *testing.T) {
	cases := []struct {
		name   string
		dims   []int64
		attrs  []*onnxpb.AttributeProto
		detail string
	}{
		{"directions", []int64{2, 16, 8}, []*onnxpb.AttributeProto{onnx.AttrInt("hidden_size", 4)}, "LSTM weight has shape [2 16 8]: 2 directions, but the node has 1"},
		{"hidden size", []int64{1, 12, 8}, []*onnxpb.AttributeProto{onnx.AttrInt("hidden_size", 4)}, "LSTM weight has shape [1 12 8]: 12 rows, but 4 gates of hidden_size 4 make 16"},
		{"rank", []int64{16, 8}, nil, "LSTM weight has shape [16 8], expected [directions, gates*hidden, features]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder("bad")
			b.Input("S", 3, 1, 8)
			b.weight("W", tc.dims...)
			b.weight("R", 1, 16, 4)
			b.NamedNode("LSTM", "lstm", []string{"S", "W", "R"}, []string{"H"}, tc.attrs...)
			o, err := Options{Method: Magnitude, Sparsity: 0.5}.parse()
			if err != nil {
				t.Fatal(err)
			}
			_, skipped := findTargets(b.Model(14, "H"), o)
			var got *Skipped
			for i := range skipped {
				if skipped[i].Name == "W" {
					got = &skipped[i]
				}
			}
			if got == nil || got.Reason != ReasonShape || got.Detail != tc.detail {
				t.Errorf("W skipped as %+v, want %q: %q", got, ReasonShape, tc.detail)
			}
		})
	}
}
