package onnx_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

type weightSummary struct {
	Name  string
	Kind  onnx.WeightKind
	DType onnx.DataType
	Dims  []int64
	Graph string
	Uses  []string // "op:input@graph"
}

func summarize(ws []*onnx.Weight) []weightSummary {
	var out []weightSummary
	for _, w := range ws {
		s := weightSummary{Name: w.Name, Kind: w.Kind, DType: w.DType, Dims: w.Dims, Graph: w.Graph.Path}
		for _, u := range w.Uses {
			s.Uses = append(s.Uses, u.OpType()+":"+itoa(u.Input)+"@"+u.GraphPath)
		}
		out = append(out, s)
	}
	return out
}

func itoa(i int) string { return string(rune('0' + i)) }

func TestWeightsMNIST(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	want := []weightSummary{
		{"Parameter193", onnx.KindInitializer, onnx.Float, []int64{16, 4, 4, 10}, "", []string{"Reshape:0@"}},
		{"Parameter87", onnx.KindInitializer, onnx.Float, []int64{16, 8, 5, 5}, "", []string{"Conv:1@"}},
		{"Parameter5", onnx.KindInitializer, onnx.Float, []int64{8, 1, 5, 5}, "", []string{"Conv:1@"}},
		{"Parameter6", onnx.KindInitializer, onnx.Float, []int64{8, 1, 1}, "", []string{"Add:1@"}},
		{"Parameter88", onnx.KindInitializer, onnx.Float, []int64{16, 1, 1}, "", []string{"Add:1@"}},
		{"Pooling160_Output_0_reshape0_shape", onnx.KindInitializer, onnx.Int64, []int64{2}, "", []string{"Reshape:1@"}},
		{"Parameter193_reshape1_shape", onnx.KindInitializer, onnx.Int64, []int64{2}, "", []string{"Reshape:1@"}},
		{"Parameter194", onnx.KindInitializer, onnx.Float, []int64{1, 10}, "", []string{"Add:1@"}},
	}
	if diff := cmp.Diff(want, summarize(m.Weights())); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	shape, err := m.Weight("Parameter193_reshape1_shape").Tensor()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int64{256, 10}, shape.Data); diff != "" {
		t.Errorf("reshape target (-want +got):\n%s", diff)
	}
}

// TestSetWeightMNIST zeroes the classifier's weight matrix: the logits must
// then be exactly the classifier's bias.
func TestSetWeightMNIST(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	w := m.Weight("Parameter193")
	if err := w.Set(onnx.NewTensor(w.Dims, make([]float32, w.NumElements()))); err != nil {
		t.Fatal(err)
	}
	bias, err := m.Weight("Parameter194").Float32s()
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, session(t, "zeroed", mustBytes(t, m), ort.Options{}), mnistInput(t))
	if diff := cmp.Diff(bias, out["Plus214_Output_0"].Data); diff != "" {
		t.Errorf("logits with a zero weight matrix (-bias +got):\n%s", diff)
	}
}

// TestSetWeightNewType stores a Conv weight as FLOAT16 behind a Cast: a
// change of type where the weight lives, plus the graph helpers that
// quantization uses (UniqueName, ReplaceUses, InsertNodes, TopoSort).
func TestSetWeightNewType(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	want := run(t, session(t, "mnist", mustBytes(t, m), ort.Options{}), mnistInput(t))
	g := m.Proto.GetGraph()
	w := m.Weight("Parameter5")
	vals, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	half, err := onnx.FromFloat32s(onnx.Float16, w.Dims, vals)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Set(half); err != nil {
		t.Fatal(err)
	}
	castOut := m.UniqueName("Parameter5")
	if castOut != "Parameter5_1" {
		t.Errorf("UniqueName(Parameter5) = %q, want Parameter5_1", castOut)
	}
	onnx.ReplaceUses(g, "Parameter5", castOut)
	onnx.InsertNodes(g, len(g.Node), onnx.NewNode("Cast", m.UniqueName("cast"), []string{"Parameter5"}, []string{castOut}, onnx.AttrInt("to", int64(onnx.Float))))
	if err := onnx.TopoSort(g); err != nil {
		t.Fatal(err)
	}
	if got := m.Weight("Parameter5"); got.DType != onnx.Float16 || got.Uses[0].OpType() != "Cast" {
		t.Errorf("after Set: weight is %v used by %s, want FLOAT16 used by Cast", got.DType, got.Uses[0].OpType())
	}
	got := run(t, session(t, "mnist-fp16-weight", mustBytes(t, m), ort.Options{}), mnistInput(t))
	sameOutputs(t, "fp16 conv weight", want, got, 1e-2)
	if orttest.MaxDiff(got["Plus214_Output_0"], want["Plus214_Output_0"]) == 0 {
		t.Errorf("outputs identical: the FLOAT16 weight was not used")
	}
}

// TestWeightsPPOCR reads and rewrites every weight of a model that keeps
// them all in Constant nodes; rewriting with the same values keeps the
// outputs bit for bit, scaling one changes them.
func TestWeightsPPOCR(t *testing.T) {
	m := onnxtest.Model(t, "ppocr-det.onnx")
	in := map[string]*onnx.Tensor{"x": ppocrInput(1)}
	want := run(t, session(t, "ppocr", mustBytes(t, m), ort.Options{}), in)
	ws := m.Weights()
	params := 0
	for _, w := range ws {
		if w.Kind != onnx.KindConstant || w.Node == nil || len(w.Uses) == 0 {
			t.Errorf("weight %q: kind %s, %d uses; want a used Constant", w.Name, w.Kind, len(w.Uses))
		}
		vals, err := w.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if w.DType == onnx.Float {
			params += len(vals)
		}
		fresh, err := onnx.FromFloat32s(w.DType, w.Dims, vals)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Set(fresh); err != nil {
			t.Fatal(err)
		}
	}
	if len(ws) != 342 {
		t.Errorf("%d weights, want the 342 Constant nodes", len(ws))
	}
	if params != 1171841 {
		t.Errorf("%d float parameters; ppocr-det has 1171841", params)
	}
	got := run(t, session(t, "ppocr-rewritten", mustBytes(t, m), ort.Options{}), in)
	sameOutputs(t, "rewritten weights", want, got, 0)

	// Negating every Conv weight must change the result.
	for _, w := range ws {
		if w.Uses[0].OpType() == "Conv" && w.Uses[0].Input == 1 {
			vals, _ := w.Float32s()
			for i := range vals {
				vals[i] = -vals[i]
			}
			if err := w.Set(onnx.NewTensor(w.Dims, vals)); err != nil {
				t.Fatal(err)
			}
		}
	}
	scaled := run(t, session(t, "ppocr-negated", mustBytes(t, m), ort.Options{}), in)
	for name := range want {
		if d := orttest.MaxDiff(scaled[name], want[name]); d < 1e-3 {
			t.Errorf("negating the Conv weights changed output %q by only %g", name, d)
		}
	}
}

func TestWeightExternalOrigin(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := m.SaveFile(path, onnx.SaveOptions{ExternalData: true, ExternalFile: "w.bin", ExternalMinBytes: 100}); err != nil {
		t.Fatal(err)
	}
	back, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, w := range back.Weights() {
		got[w.Name] = w.External
	}
	want := map[string]string{
		"Parameter193": "w.bin", "Parameter87": "w.bin", "Parameter5": "w.bin",
		"Parameter6": "", "Parameter88": "", "Pooling160_Output_0_reshape0_shape": "",
		"Parameter193_reshape1_shape": "", "Parameter194": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("external origin (-want +got):\n%s", diff)
	}
}

// subgraphModel builds y = If(cond, then: x @ W1 + B, else: x + W2) and
// z = Loop(3 times, s = s * C), with weights in both branches, a weight B
// of the main graph captured by the then-branch, and a Constant
// (value_floats) inside the loop body.
func subgraphModel() *onnx.Model {
	f32 := func(dims []int64, v ...float32) *onnxpb.TensorProto {
		tp, err := onnx.TensorToProto(onnx.NewTensor(dims, v), "")
		if err != nil {
			panic(err)
		}
		return tp
	}
	named := func(name string, tp *onnxpb.TensorProto) *onnxpb.TensorProto { tp.Name = proto.String(name); return tp }
	thenG := &onnxpb.GraphProto{
		Name: proto.String("then"),
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("Constant", "w1", nil, []string{"W1"}, onnx.AttrTensor("value", f32([]int64{2, 2}, 1, 2, 3, 4))),
			onnx.NewNode("MatMul", "mm", []string{"x", "W1"}, []string{"xw"}),
			onnx.NewNode("Add", "addb", []string{"xw", "B"}, []string{"then_out"}),
		},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("then_out", onnx.Float, []onnx.Dim{"N", 2})},
	}
	elseG := &onnxpb.GraphProto{
		Name:        proto.String("else"),
		Initializer: []*onnxpb.TensorProto{named("W2", f32([]int64{2}, 10, 20))},
		Node:        []*onnxpb.NodeProto{onnx.NewNode("Add", "add2", []string{"x", "W2"}, []string{"else_out"})},
		Output:      []*onnxpb.ValueInfoProto{onnx.ValueInfo("else_out", onnx.Float, []onnx.Dim{"N", 2})},
	}
	body := &onnxpb.GraphProto{
		Name: proto.String("body"),
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("Constant", "c", nil, []string{"C"}, onnx.AttrFloats("value_floats", 2, 3)),
			onnx.NewNode("Mul", "mul", []string{"s_in", "C"}, []string{"s_out"}),
			onnx.NewNode("Identity", "cond_pass", []string{"cond_in"}, []string{"cond_out"}),
		},
		Input: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("i", onnx.Int64, []onnx.Dim{}),
			onnx.ValueInfo("cond_in", onnx.Bool, []onnx.Dim{}),
			onnx.ValueInfo("s_in", onnx.Float, []onnx.Dim{2}),
		},
		Output: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("cond_out", onnx.Bool, []onnx.Dim{}),
			onnx.ValueInfo("s_out", onnx.Float, []onnx.Dim{2}),
		},
	}
	main := &onnxpb.GraphProto{
		Name: proto.String("main"),
		Initializer: []*onnxpb.TensorProto{
			named("B", f32([]int64{2}, 0.5, -0.5)),
			named("S0", f32([]int64{2}, 1, 1)),
			named("trip", mustProto(onnx.NewTensor([]int64{}, []int64{3}))),
		},
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("If", "if", []string{"cond"}, []string{"y"}, onnx.AttrGraph("then_branch", thenG), onnx.AttrGraph("else_branch", elseG)),
			onnx.NewNode("Loop", "loop", []string{"trip", "", "S0"}, []string{"z"}, onnx.AttrGraph("body", body)),
		},
		Input: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{}),
			onnx.ValueInfo("x", onnx.Float, []onnx.Dim{"N", 2}),
		},
		Output: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("y", onnx.Float, []onnx.Dim{"N", 2}),
			onnx.ValueInfo("z", onnx.Float, []onnx.Dim{2}),
		},
	}
	m := onnx.NewModel(main, 17)
	m.Name = "subgraphs"
	return m
}

func mustProto(t *onnx.Tensor) *onnxpb.TensorProto {
	tp, err := onnx.TensorToProto(t, "")
	if err != nil {
		panic(err)
	}
	return tp
}

func TestWeightsInSubgraphs(t *testing.T) {
	m := subgraphModel()
	want := []weightSummary{
		{"B", onnx.KindInitializer, onnx.Float, []int64{2}, "", []string{"Add:1@if/then_branch"}},
		{"S0", onnx.KindInitializer, onnx.Float, []int64{2}, "", []string{"Loop:2@"}},
		{"trip", onnx.KindInitializer, onnx.Int64, []int64{}, "", []string{"Loop:0@"}},
		{"W1", onnx.KindConstant, onnx.Float, []int64{2, 2}, "if/then_branch", []string{"MatMul:1@if/then_branch"}},
		{"W2", onnx.KindInitializer, onnx.Float, []int64{2}, "if/else_branch", []string{"Add:1@if/else_branch"}},
		{"C", onnx.KindConstant, onnx.Float, []int64{2}, "loop/body", []string{"Mul:1@loop/body"}},
	}
	if diff := cmp.Diff(want, summarize(m.Weights())); diff != "" {
		t.Fatalf("weights (-want +got):\n%s", diff)
	}
	x := onnx.NewTensor([]int64{1, 2}, []float32{1, 1})
	feed := func(cond bool) map[string]*onnx.Tensor {
		return map[string]*onnx.Tensor{"cond": onnx.NewTensor([]int64{}, []bool{cond}), "x": x}
	}
	check := func(label string, cond bool, wantY, wantZ []float32) {
		t.Helper()
		out := run(t, session(t, label, mustBytes(t, m), ort.Options{}), feed(cond))
		if diff := cmp.Diff(wantY, out["y"].Data); diff != "" {
			t.Errorf("%s: y (-want +got):\n%s", label, diff)
		}
		if diff := cmp.Diff(wantZ, out["z"].Data); diff != "" {
			t.Errorf("%s: z (-want +got):\n%s", label, diff)
		}
	}
	// [1 1] @ [[1 2] [3 4]] + [.5 -.5] = [4.5 5.5]; [1 1] * 2^3, 3^3.
	check("original then", true, []float32{4.5, 5.5}, []float32{8, 27})
	check("original else", false, []float32{11, 21}, []float32{8, 27})

	for _, w := range m.Weights() {
		vals, err := w.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i := range vals {
			vals[i] *= 2
		}
		fresh, err := onnx.FromFloat32s(w.DType, w.Dims, vals)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Set(fresh); err != nil {
			t.Fatal(err)
		}
	}
	// Doubled: W1, B, W2, S0, C and the trip count (3 -> 6 iterations):
	// [1 1] @ [[2 4] [6 8]] + [1 -1] = [9 11]; [2 2] * [4 6]^6.
	check("doubled then", true, []float32{9, 11}, []float32{2 * 4096, 2 * 46656})
	check("doubled else", false, []float32{21, 41}, []float32{2 * 4096, 2 * 46656})
	if c := m.Weights()[5]; c.Node.GetAttribute()[0].GetName() != "value" {
		t.Errorf("Constant C after Set keeps attribute %q, want value", c.Node.GetAttribute()[0].GetName())
	}
}
