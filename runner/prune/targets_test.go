package prune

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/onnx"
)

// zoo is a small model with a weight of every kind prune meets: a Conv
// with its bias, BatchNormalization, a depthwise Conv whose weight is a
// Constant node, a Gemm with transB, a MatMul weight behind a Reshape, a
// bias added by a separate Add, a weight shared by a MatMul and an Add, a
// MatMul to exclude, a small weight, and weights inside If branches.
func zoo(t testing.TB) *onnx.Model {
	b := newBuilder(t, "zoo")
	b.input("X", onnx.Float, 1, 4, 6, 6).input("flag", onnx.Bool)
	b.init("Wc", []int64{6, 4, 3, 3}, nil).init("Bc", []int64{6}, nil)
	b.node("Conv", "conv", []string{"X", "Wc", "Bc"}, []string{"C1"}, onnx.AttrInts("pads", 1, 1, 1, 1))
	for _, p := range []string{"bn_scale", "bn_bias", "bn_mean"} {
		b.init(p, []int64{6}, nil)
	}
	b.init("bn_var", []int64{6}, []float32{1, 2, 1, 2, 1, 2})
	b.node("BatchNormalization", "bn", []string{"C1", "bn_scale", "bn_bias", "bn_mean", "bn_var"}, []string{"C2"})
	b.node("Relu", "relu", []string{"C2"}, []string{"C3"})
	b.constant("Wdw", []int64{6, 1, 3, 3})
	b.node("Conv", "dw", []string{"C3", "Wdw"}, []string{"C4"}, onnx.AttrInt("group", 6), onnx.AttrInts("pads", 1, 1, 1, 1))
	b.node("Flatten", "flat", []string{"C4"}, []string{"F"})
	b.init("Wg", []int64{10, 216}, nil).init("Cg", []int64{10}, nil)
	b.node("Gemm", "fc", []string{"F", "Wg", "Cg"}, []string{"G"}, onnx.AttrInt("transB", 1))
	b.init("Wm", []int64{2, 5, 4}, nil).initInt64("shape", 10, 4)
	b.node("Reshape", "reshape_w", []string{"Wm", "shape"}, []string{"Wm_2d"})
	b.node("MatMul", "mm", []string{"G", "Wm_2d"}, []string{"M"})
	b.init("Bm", []int64{4}, nil)
	b.node("Add", "add_bias", []string{"M", "Bm"}, []string{"A1"})
	b.init("Wm2", []int64{4, 4}, nil)
	b.node("MatMul", "mm2", []string{"A1", "Wm2"}, []string{"M2"})
	b.node("Add", "add2", []string{"M2", "Wm2"}, []string{"S"})
	b.init("We", []int64{4, 4}, nil)
	b.node("MatMul", "keep_me", []string{"S", "We"}, []string{"K"})
	b.init("Ws", []int64{4, 2}, nil)
	b.node("MatMul", "small", []string{"K", "Ws"}, []string{"Y"})
	branch := func(name, w string) *builder {
		s := newBuilder(t, name)
		s.init(w, []int64{10, 3}, nil)
		s.node("MatMul", name+"_mm", []string{"G", w}, []string{name + "_out"})
		s.output(name+"_out", onnx.Float)
		return s
	}
	b.node("If", "if", []string{"flag"}, []string{"Z"},
		onnx.AttrGraph("then_branch", branch("then", "Wt").g), onnx.AttrGraph("else_branch", branch("else", "Wf").g))
	b.output("Y", onnx.Float).output("Z", onnx.Float)
	return b.model(13)
}

func TestFindTargets(t *testing.T) {
	o, err := parseSpec(v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5", MinParams: 9,
		Exclude: &v1alpha1.Exclusion{Nodes: []string{"keep_me"}}})
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
	o, err := parseSpec(v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5",
		Exclude: &v1alpha1.Exclusion{OpTypes: []string{"MatMul", "Gemm"}}})
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

func TestResolveShape(t *testing.T) {
	tests := []struct {
		shape, in []int64
		allowZero bool
		want      []int64
		err       bool
	}{
		{[]int64{-1, 4}, []int64{2, 5, 4}, false, []int64{10, 4}, false},
		{[]int64{0, -1}, []int64{2, 5, 4}, false, []int64{2, 20}, false},
		{[]int64{40}, []int64{2, 5, 4}, false, []int64{40}, false},
		{[]int64{3, -1}, []int64{2, 5, 4}, false, nil, true},
		{[]int64{-1, -1}, []int64{2, 5, 4}, false, nil, true},
		{[]int64{7}, []int64{2, 5, 4}, false, nil, true},
	}
	for _, tc := range tests {
		got, err := resolveShape(tc.shape, tc.in, tc.allowZero)
		if (err != nil) != tc.err {
			t.Errorf("resolveShape(%v, %v) error %v, want error %v", tc.shape, tc.in, err, tc.err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("resolveShape(%v, %v) (-want +got):\n%s", tc.shape, tc.in, diff)
		}
	}
}
