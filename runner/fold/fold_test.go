package fold

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
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
		// The same value as ws: the branch reads ws from the main graph.
		{Name: "w_inner_t", Node: "then_out", OpType: "MatMul", Ops: []string{"Mul", "Transpose"}, SameAs: "ws"},
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

// Two chains computing the same weight (Silero VAD unsqueezes its LSTM
// weight once for each LSTM reading it) fold to one initializer that both
// readers read, not to two copies; a chain computing another value from
// the same constant keeps its own.
func TestWeightsSharedValue(t *testing.T) {
	orttest.Require(t)
	b := onnxtest.NewBuilder(1)
	x := b.Input("x", 2, 8)
	w := b.Init("w", onnx.NewTensor([]int64{6, 8}, b.Uniform(48)))
	y1 := b.Node("MatMul", "y1", []string{x, b.Node("Transpose", "w1", []string{w}, onnx.AttrInts("perm", 1, 0))})
	y2 := b.Node("MatMul", "y2", []string{x, b.Node("Transpose", "w2", []string{w}, onnx.AttrInts("perm", 1, 0))})
	scaled := b.Node("Transpose", "w3", []string{b.Node("Mul", "ws", []string{w, b.Init("two", onnx.NewTensor([]int64{}, []float32{2}))})}, onnx.AttrInts("perm", 1, 0))
	y3 := b.Node("MatMul", "y3", []string{x, scaled})
	m := b.Model(13, y1, y2, y3)
	before := m.Clone()
	r, err := Weights(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Folded{
		{Name: "w1", Node: "y1", OpType: "MatMul", Ops: []string{"Transpose"}},
		{Name: "w2", Node: "y2", OpType: "MatMul", Ops: []string{"Transpose"}, SameAs: "w1"},
		{Name: "w3", Node: "y3", OpType: "MatMul", Ops: []string{"Mul", "Transpose"}},
	}
	if diff := cmp.Diff(want, r.Folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	var weights []string
	for _, w := range m.Weights() {
		weights = append(weights, w.Name)
	}
	if diff := cmp.Diff([]string{"w1", "w3"}, weights); diff != "" {
		t.Errorf("weights after folding (-want +got):\n%s", diff)
	}
	in := map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{2, 8}, b.Uniform(16))}
	wantOut, got := orttest.Run(t, before, in), orttest.Run(t, m, in)
	for name, v := range wantOut {
		if d := orttest.MaxDiff(got[name], v); d > 1e-6 {
			t.Errorf("output %s differs by %g after folding", name, d)
		}
	}
}

// Both branches of an If computing the same weight share one initializer,
// moved up to the If's graph, where both branches read it.
func TestWeightsSharedAcrossBranches(t *testing.T) {
	orttest.Require(t)
	b := onnxtest.NewBuilder(1)
	x := b.Input("x", 2, 8)
	w := b.Init("w", onnx.NewTensor([]int64{6, 8}, b.Uniform(48)))
	branch := func(seed uint64, prefix string) *onnxpb.GraphProto {
		sub := onnxtest.NewBuilder(seed)
		sub.Node("Transpose", prefix+"_w", []string{w}, onnx.AttrInts("perm", 1, 0))
		sub.Node("MatMul", prefix+"_out", []string{x, prefix + "_w"})
		return sub.Graph(prefix + "_out")
	}
	b.Inputs = append(b.Inputs, onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{}))
	b.NamedNode("If", "if", []string{"cond"}, []string{"y"}, onnx.AttrGraph("then_branch", branch(2, "then")), onnx.AttrGraph("else_branch", branch(3, "else")))
	m := b.Model(13, "y")
	before := m.Clone()
	r, err := Weights(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []Folded{
		{Name: "then_w", Node: "then_out", OpType: "MatMul", Ops: []string{"Transpose"}},
		{Name: "else_w", Node: "else_out", OpType: "MatMul", Ops: []string{"Transpose"}, SameAs: "then_w"},
	}
	if diff := cmp.Diff(want, r.Folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	var inits []string
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		inits = append(inits, tp.GetName())
	}
	if diff := cmp.Diff([]string{"then_w"}, inits); diff != "" {
		t.Errorf("the main graph's initializers (-want +got):\n%s", diff)
	}
	for _, cond := range []bool{true, false} {
		in := map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{2, 8}, b.Uniform(16)), "cond": onnx.NewTensor([]int64{}, []bool{cond})}
		if d := orttest.MaxDiff(orttest.Run(t, m, in)["y"], orttest.Run(t, before, in)["y"]); d > 1e-6 {
			t.Errorf("cond %v: y differs by %g after folding", cond, d)
		}
	}
}

// A head reading the token embedding through a Transpose (tied weights,
// as exports write them unfolded) is folded into a transposed copy by
// Weights, and refused by WeightsKeepingTied, which leaves the model as
// it was; a Transpose of a weight read by nothing else is folded by both.
func TestWeightsKeepingTied(t *testing.T) {
	orttest.Require(t)
	tied := func() *onnx.Model {
		b := onnxtest.NewBuilder(1)
		ids := b.InputOf("ids", onnx.Int64, 2)
		table := b.Init("embed", onnx.NewTensor([]int64{5, 4}, b.Uniform(20)))
		h := b.Node("Gather", "h", []string{table, ids})
		head := b.Node("MatMul", "logits", []string{h, b.Node("Transpose", "head", []string{table}, onnx.AttrInts("perm", 1, 0))})
		own := b.Node("Transpose", "own_t", []string{b.Init("own", onnx.NewTensor([]int64{3, 5}, b.Uniform(15)))}, onnx.AttrInts("perm", 1, 0))
		return b.Model(13, head, b.Node("MatMul", "out", []string{head, own}))
	}
	for _, keep := range []bool{false, true} {
		m := tied()
		f := Weights
		if keep {
			f = WeightsKeepingTied
		}
		r, err := f(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		var folded, refused []string
		for _, x := range r.Folded {
			folded = append(folded, x.Name)
		}
		for _, x := range r.Refused {
			refused = append(refused, x.Name+" (tied to "+x.Tied+"): "+x.Reason)
		}
		want := []string{"head", "own_t"}
		var wantRefused []string
		if keep {
			want = []string{"own_t"}
			wantRefused = []string{`head (tied to embed): computed from "embed", which other nodes read too (tied weights): folding would store it twice`}
		}
		if diff := cmp.Diff(want, folded); diff != "" {
			t.Errorf("keep tied %v: folded (-want +got):\n%s", keep, diff)
		}
		if diff := cmp.Diff(wantRefused, refused); diff != "" {
			t.Errorf("keep tied %v: refused (-want +got):\n%s", keep, diff)
		}
	}
}
