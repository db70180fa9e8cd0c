package fold

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// computedWeights is a model whose layers read weights computed at run
// time: a MatMul weight transposed and scaled by constants, a Gemm bias
// from ConstantOfShape, a Conv kernel unsqueezed from a Constant node, a
// MatMul of two activations (not a weight), and a MatMul inside an If
// branch whose weight is an outer constant scaled inside the branch.
func computedWeights() *onnx.Model {
	b := onnxtest.NewBuilder(1)
	x := b.Input("x", 2, 8)
	w := b.Init("w", onnx.NewTensor([]int64{6, 8}, b.Uniform(48)))
	wt := b.Node("Transpose", "wt", []string{w}, onnx.AttrInts("perm", 1, 0))
	ws := b.Node("Mul", "ws", []string{wt, b.Init("two", onnx.NewTensor([]int64{}, []float32{2}))})
	h := b.Node("MatMul", "h", []string{x, ws}) // [2, 6]
	shape := b.Init("bias_shape", onnx.NewTensor([]int64{1}, []int64{4}))
	zero, _ := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []float32{0.5}), "")
	zero.Name = nil
	bias := b.Node("ConstantOfShape", "bias", []string{shape}, onnx.AttrTensor("value", zero))
	g := b.Node("Gemm", "g", []string{h, b.Init("wg", onnx.NewTensor([]int64{6, 4}, b.Uniform(24))), bias})
	k := b.Constant("k2", onnx.NewTensor([]int64{3, 1, 2}, b.Uniform(6)))
	kernel := b.Node("Unsqueeze", "kernel", []string{k, b.Init("axes", onnx.NewTensor([]int64{1}, []int64{2}))}) // [3, 1, 1, 2]
	img := b.Node("Reshape", "img", []string{g, b.Init("img_shape", onnx.NewTensor([]int64{4}, []int64{2, 1, 2, 2}))})
	conv := b.Node("Conv", "conv", []string{img, kernel})
	att := b.Node("MatMul", "att", []string{h, b.Node("Transpose", "ht", []string{h})})
	// The If branch scales and transposes the outer w inside the branch.
	sub := onnxtest.NewBuilder(2)
	sub.Node("Mul", "w_inner", []string{w, "two"})
	sub.Node("Transpose", "w_inner_t", []string{"w_inner"}, onnx.AttrInts("perm", 1, 0))
	sub.Node("MatMul", "then_out", []string{x, "w_inner_t"})
	then := sub.Graph("then_out")
	els := onnxtest.NewBuilder(3)
	els.Node("Identity", "else_out", []string{h})
	b.Inputs = append(b.Inputs, onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{}))
	b.NamedNode("If", "if", []string{"cond"}, []string{"branch"}, onnx.AttrGraph("then_branch", then), onnx.AttrGraph("else_branch", els.Graph("else_out")))
	return b.Model(13, conv, att, "branch")
}

func TestWeights(t *testing.T) {
	orttest.Require(t)
	m := computedWeights()
	before := m.Clone()
	r, err := Weights(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Folded{
		{Name: "ws", Node: "h", OpType: "MatMul", Ops: []string{"Transpose", "Mul"}},
		{Name: "bias", Node: "g", OpType: "Gemm", Ops: []string{"ConstantOfShape"}},
		{Name: "kernel", Node: "conv", OpType: "Conv", Ops: []string{"Constant", "Unsqueeze"}},
		{Name: "w_inner_t", Node: "then_out", OpType: "MatMul", Ops: []string{"Mul", "Transpose"}},
	}
	if diff := cmp.Diff(want, r.Folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	if len(r.Refused) != 0 {
		t.Errorf("refused %v", r.Refused)
	}
	var ops []string
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			ops = append(ops, n.GetOpType())
		}
	}
	// Only the layers, the activations' Transpose, the Reshape of an
	// activation and the If are left.
	if diff := cmp.Diff([]string{"MatMul", "Gemm", "Reshape", "Conv", "Transpose", "MatMul", "If", "MatMul", "Identity"}, ops); diff != "" {
		t.Errorf("nodes after folding (-want +got):\n%s", diff)
	}
	names := map[string]bool{}
	for _, w := range m.Weights() {
		names[w.Name] = true
	}
	for _, gone := range []string{"k2", "bias_shape", "axes"} {
		if names[gone] {
			t.Errorf("%s, read only by folded chains, is still in the model", gone)
		}
	}
	for _, cond := range []bool{true, false} {
		in := map[string]*onnx.Tensor{
			"x":    onnx.NewTensor([]int64{2, 8}, []float32{1, -2, 3, 0.5, -1, 2, 0, 1, 0.25, 1, -1, 2, 3, -3, 1, 0}),
			"cond": onnx.NewTensor([]int64{}, []bool{cond}),
		}
		wantOut, got := orttest.Run(t, before, in), orttest.Run(t, m, in)
		for name, v := range wantOut {
			if d := orttest.MaxDiff(got[name], v); d > 1e-6 {
				t.Errorf("cond %v: output %s differs by %g after folding", cond, name, d)
			}
		}
	}
}

// Weights that cannot be folded are named with the reason; a matrix
// product of activations is not a weight and is not named.
func TestWeightsRefused(t *testing.T) {
	b := onnxtest.NewBuilder(1)
	x := b.Input("x", 1, 2, 4, 4)
	shape := b.Init("shape", onnx.NewTensor([]int64{4}, []int64{3, 2, 1, 1}))
	drawn := b.Node("RandomNormalLike", "drawn", []string{b.Node("ConstantOfShape", "zeros", []string{shape})})
	c1 := b.Node("Conv", "c1", []string{x, drawn})
	k := b.Node("Slice", "k", []string{x, b.Init("s", onnx.NewTensor([]int64{1}, []int64{0})), b.Init("e", onnx.NewTensor([]int64{1}, []int64{1}))})
	c2 := b.Node("Conv", "c2", []string{x, b.Node("Reshape", "from_input", []string{k, b.Init("ks", onnx.NewTensor([]int64{4}, []int64{2, 2, 2, 2}))})})
	flat := b.Node("Reshape", "flat", []string{x, b.Init("fs", onnx.NewTensor([]int64{2}, []int64{4, 8}))})
	mm := b.Node("MatMul", "mm", []string{flat, b.Node("Transpose", "ft", []string{flat})})
	m := b.Model(13, c1, c2, mm)
	r, err := Weights(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Refused{
		{Name: "drawn", Node: "c1", OpType: "Conv", Reason: "drawn at run time by RandomNormalLike drawn (not deterministic)"},
		{Name: "from_input", Node: "c2", OpType: "Conv", Reason: `computed at run time from the graph input "x"`},
	}
	if diff := cmp.Diff(want, r.Refused); diff != "" {
		t.Errorf("refused (-want +got):\n%s", diff)
	}
	if len(r.Folded) != 0 {
		t.Errorf("folded %v, want nothing", r.Folded)
	}
}

// A caller may leave chains alone: prune follows Reshape chains to their
// initializer itself.
func TestWeightsSkip(t *testing.T) {
	b := onnxtest.NewBuilder(1)
	x := b.Input("x", 2, 8)
	w := b.Node("Reshape", "w", []string{b.Init("w_flat", onnx.NewTensor([]int64{32}, b.Uniform(32))), b.Init("ws", onnx.NewTensor([]int64{2}, []int64{8, 4}))})
	m := b.Model(13, b.Node("MatMul", "y", []string{x, w}))
	before := proto.Clone(m.Proto)
	r, err := Weights(m, func(ops []string) bool { return cmp.Equal(ops, []string{"Reshape"}) })
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Folded)+len(r.Refused) != 0 || !proto.Equal(before, m.Proto) {
		t.Errorf("a skipped chain changed the model: %+v", r)
	}
	if strings.Contains(m.Name, "fold") {
		t.Errorf("model renamed %q", m.Name)
	}
}
