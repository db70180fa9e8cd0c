package onnx_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
)

func TestIndexGraph(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	g := m.Proto.GetGraph()
	ix := onnx.IndexGraph(g, "")
	if got := ix.Producer["Convolution28_Output_0"].GetOpType(); got != "Conv" {
		t.Errorf("producer of Convolution28_Output_0 = %q, want Conv", got)
	}
	var uses []string
	for _, u := range ix.Consumers["Input3"] {
		uses = append(uses, u.Node.GetName()+":"+itoa(u.Input))
	}
	if diff := cmp.Diff([]string{"Convolution28:0"}, uses); diff != "" {
		t.Errorf("consumers of Input3 (-want +got):\n%s", diff)
	}
	if ix.Initializer["Parameter5"] == nil || ix.Input["Input3"] == nil || ix.Output["Plus214_Output_0"] == nil {
		t.Errorf("index misses initializer, input or output entries")
	}
	dt, dims, params, ok := onnx.TensorType(onnx.FindValueInfo(g, "Input3"))
	if !ok || dt != onnx.Float || !cmp.Equal(dims, []int64{1, 1, 28, 28}) || !cmp.Equal(params, []string{"", "", "", ""}) {
		t.Errorf("TensorType(Input3) = %v %v %q %v", dt, dims, params, ok)
	}
	ppocr := onnxtest.Model(t, "ppocr-det.onnx")
	_, dims, params, _ = onnx.TensorType(ppocr.Proto.GetGraph().GetInput()[0])
	if !cmp.Equal(dims, []int64{-1, 3, -1, -1}) || params[0] == "" {
		t.Errorf("ppocr input dims %v params %q: want dynamic N, H, W with names", dims, params)
	}
}

// TestTopoSort reverses mnist-8's node order: sorting must restore a valid
// order that ONNX Runtime runs with the original outputs.
func TestTopoSort(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	want := run(t, session(t, "mnist", mustBytes(t, m), ort.Options{}), mnistInput(t))
	g := m.Proto.GetGraph()
	for i, j := 0, len(g.Node)-1; i < j; i, j = i+1, j-1 {
		g.Node[i], g.Node[j] = g.Node[j], g.Node[i]
	}
	if err := onnx.TopoSort(g); err != nil {
		t.Fatal(err)
	}
	got := run(t, session(t, "mnist-sorted", mustBytes(t, m), ort.Options{}), mnistInput(t))
	sameOutputs(t, "sorted", want, got, 0)

	cyc := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{
		onnx.NewNode("Relu", "a", []string{"y"}, []string{"x"}),
		onnx.NewNode("Relu", "b", []string{"x"}, []string{"y"}),
	}}
	if err := onnx.TopoSort(cyc); err == nil || !strings.Contains(err.Error(), "cycle through node") {
		t.Errorf("cycle: error = %v", err)
	}
}

func TestOpsetAndNames(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	if got := m.Opset(""); got != 7 {
		t.Errorf("Opset(\"\") = %d, want 7", got)
	}
	if got := m.Opset("ai.onnx"); got != 7 {
		t.Errorf("Opset(ai.onnx) = %d, want 7", got)
	}
	m.SetOpset("", 13)
	m.SetOpset("com.microsoft", 1)
	if m.Opset("") != 13 || m.Opset("com.microsoft") != 1 || len(m.Proto.GetOpsetImport()) != 2 {
		t.Errorf("after SetOpset: imports %v", m.Proto.GetOpsetImport())
	}
	got := []string{m.UniqueName("Parameter5"), m.UniqueName("Parameter5"), m.UniqueName("fresh"), m.UniqueName("Convolution28")}
	if diff := cmp.Diff([]string{"Parameter5_1", "Parameter5_2", "fresh", "Convolution28_1"}, got); diff != "" {
		t.Errorf("UniqueName (-want +got):\n%s", diff)
	}
	name, err := m.AddInitializer(m.Proto.GetGraph(), "Parameter5", onnx.NewTensor([]int64{1}, []float32{1}))
	if err != nil || name != "Parameter5_3" || m.Weight("Parameter5_3") == nil {
		t.Errorf("AddInitializer = %q, %v", name, err)
	}
}

// TestRenameTensor renames an initializer, an intermediate tensor and the
// graph output of mnist-8; ONNX Runtime must give the same result under
// the new output name.
func TestRenameTensor(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	want := run(t, session(t, "mnist", mustBytes(t, m), ort.Options{}), mnistInput(t))
	g := m.Proto.GetGraph()
	onnx.RenameTensor(g, "Parameter5", "conv1.weight")
	onnx.RenameTensor(g, "Convolution28_Output_0", "conv1.out")
	onnx.RenameTensor(g, "Plus214_Output_0", "logits")
	got := run(t, session(t, "renamed", mustBytes(t, m), ort.Options{}), mnistInput(t))
	if diff := cmp.Diff(want["Plus214_Output_0"], got["logits"]); diff != "" {
		t.Errorf("logits (-want +got):\n%s", diff)
	}
	if w := m.Weight("conv1.weight"); w == nil || len(w.Uses) != 1 || w.Uses[0].OpType() != "Conv" {
		t.Errorf("renamed weight: %+v", w)
	}
	if onnx.IndexGraph(g, "").Producer["conv1.out"] == nil {
		t.Errorf("no producer of the renamed tensor")
	}
}
