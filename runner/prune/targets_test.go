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
// handles the kinds it has a layout for and leaves the table's other kinds
// (recurrent layers, embeddings) dense, as not a prunable weight.
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
	if len(targets) != 1 {
		t.Fatalf("%d targets, want the ConvTranspose weight alone", len(targets))
	}
	l := targets[0].lay
	if got, want := []int{l.groups, l.rows, l.cols, len(l.kernel)}, []int{2, 3 * 4, 2, 2}; !cmp.Equal(got, want) {
		t.Errorf("ConvTranspose layout groups, rows, cols, kernel rank %v, want %v", got, want)
	}
	// Element (group 1, row 5 = output channel 1 at kernel position 1,
	// column 0 = input channel 2) is Wct[2, 1, 0, 1].
	if got, want := l.at(1, 5, 0), ((2*3+1)*2+0)*2+1; got != want {
		t.Errorf("ConvTranspose layout at(1, 5, 0) = %d, want %d", got, want)
	}
	wantSkipped := []Skipped{
		{Name: "W", Node: "lstm", OpType: "LSTM", Params: 256, Reason: ReasonNotWeight, Detail: "LSTM input 1"},
		{Name: "R", Node: "lstm", OpType: "LSTM", Params: 128, Reason: ReasonNotWeight, Detail: "LSTM input 2"},
		{Name: "B", Node: "lstm", OpType: "LSTM", Params: 64, Reason: ReasonNotWeight, Detail: "LSTM input 3"},
		{Name: "E", Node: "embed", OpType: "Gather", Params: 60, Reason: ReasonNotWeight, Detail: "Gather input 0"},
	}
	if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
}
