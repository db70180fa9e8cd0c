package onnx_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// opCase is a small model in an old opset form.
type opCase struct {
	name    string
	from    int64
	nodes   []*onnxpb.NodeProto
	inits   map[string]*onnx.Tensor
	inputs  map[string]*onnx.Tensor
	order   []string // input names in order (maps have none)
	outputs []string
	// noShapes declares inputs without shapes, so ranks are unknown.
	noShapes bool
	// want, when set, are the expected outputs (for operators ONNX Runtime
	// no longer runs in their old form); otherwise the original model's
	// outputs in ONNX Runtime are.
	want map[string]*onnx.Tensor
	// check inspects the upgraded model.
	check func(t *testing.T, m *onnx.Model)
}

func (c opCase) model(t *testing.T) *onnx.Model {
	t.Helper()
	g := &onnxpb.GraphProto{Name: proto.String(c.name), Node: c.nodes}
	for name, v := range c.inits {
		tp, err := onnx.TensorToProto(v, name)
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
	}
	for _, name := range c.order {
		in := c.inputs[name]
		var dims []onnx.Dim
		if !c.noShapes {
			dims = []onnx.Dim{}
			for _, d := range in.Dims {
				dims = append(dims, d)
			}
		}
		g.Input = append(g.Input, onnx.ValueInfo(name, in.DType, dims))
	}
	for _, name := range c.outputs {
		dt := onnx.Float
		if w, ok := c.want[name]; ok {
			dt = w.DType
		}
		if strings.HasSuffix(name, "indices") {
			dt = onnx.Int64
		}
		g.Output = append(g.Output, onnx.ValueInfo(name, dt, nil))
	}
	m := onnx.NewModel(g, c.from)
	m.Name = c.name
	return m
}

func seq(dims ...int64) *onnx.Tensor {
	n := onnx.NumElements(dims)
	v := make([]float32, n)
	for i := range v {
		v[i] = float32((i*37)%23)/7 - 1.5
	}
	return onnx.NewTensor(dims, v)
}

func f32(dims []int64, v ...float32) *onnx.Tensor { return onnx.NewTensor(dims, v) }
func i64(dims []int64, v ...int64) *onnx.Tensor   { return onnx.NewTensor(dims, v) }

func ops(m *onnx.Model) map[string]int {
	out := map[string]int{}
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			out[n.GetOpType()]++
		}
	}
	return out
}

func attrNames(n *onnxpb.NodeProto) []string {
	var out []string
	for _, a := range n.GetAttribute() {
		out = append(out, a.GetName())
	}
	return out
}

func node(m *onnx.Model, op string) *onnxpb.NodeProto {
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			if n.GetOpType() == op {
				return n
			}
		}
	}
	return nil
}

func expectAttrs(op string, want ...string) func(*testing.T, *onnx.Model) {
	return func(t *testing.T, m *onnx.Model) {
		t.Helper()
		n := node(m, op)
		if n == nil {
			t.Fatalf("no %s node after upgrade (ops %v)", op, ops(m))
		}
		if diff := cmp.Diff(want, attrNames(n)); diff != "" {
			t.Errorf("%s attributes (-want +got):\n%s", op, diff)
		}
	}
}

func TestUpgradeOperators(t *testing.T) {
	nn := onnx.NewNode
	tests := []opCase{
		{name: "softmax axis 1 of rank 3", from: 11,
			nodes:  []*onnxpb.NodeProto{nn("Softmax", "sm", []string{"x"}, []string{"y"}, onnx.AttrInt("axis", 1))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3, 4)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if o := ops(m); o["Flatten"] != 1 || o["Reshape"] != 1 {
					t.Errorf("ops %v: want the Flatten/Softmax/Reshape rewrite", o)
				}
			}},
		{name: "logsoftmax default axis of rank 2", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("LogSoftmax", "lsm", []string{"x"}, []string{"y"})},
			inputs: map[string]*onnx.Tensor{"x": seq(3, 5)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if o := ops(m); len(o) != 1 || node(m, "LogSoftmax").GetAttribute()[0].GetI() != -1 {
					t.Errorf("ops %v, attrs %v: want LogSoftmax alone on axis -1", o, node(m, "LogSoftmax").GetAttribute())
				}
			}},
		{name: "hardmax axis 0 of unknown rank", from: 9, noShapes: true,
			nodes:  []*onnxpb.NodeProto{nn("Hardmax", "hm", []string{"x"}, []string{"y"}, onnx.AttrInt("axis", 0))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3)}, order: []string{"x"}, outputs: []string{"y"}},
		{name: "clip attributes", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Clip", "clip", []string{"x"}, []string{"y"}, onnx.AttrFloat("min", -0.5), onnx.AttrFloat("max", 0.75))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 5)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Clip")},
		{name: "clip of undeclared type", from: 7, noShapes: true,
			nodes: []*onnxpb.NodeProto{
				nn("Relu", "r", []string{"x"}, []string{"h"}),
				nn("Clip", "clip", []string{"h"}, []string{"y"}, onnx.AttrFloat("max", 0.5)),
			},
			inputs: map[string]*onnx.Tensor{"x": seq(4)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if ops(m)["CastLike"] != 1 {
					t.Errorf("ops %v: want max cast like the input", ops(m))
				}
			}},
		{name: "pad constant value", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Pad", "pad", []string{"x"}, []string{"y"}, onnx.AttrInts("pads", 0, 1, 0, 2), onnx.AttrFloat("value", 1.5))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Pad")},
		{name: "pad reflect", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Pad", "pad", []string{"x"}, []string{"y"}, onnx.AttrInts("pads", 0, 1, 0, 1), onnx.AttrString("mode", "reflect"))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Pad", "mode")},
		{name: "slice attributes", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Slice", "slice", []string{"x"}, []string{"y"}, onnx.AttrInts("starts", 1, 0), onnx.AttrInts("ends", 3, 2), onnx.AttrInts("axes", 0, 1))},
			inputs: map[string]*onnx.Tensor{"x": seq(4, 3)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Slice")},
		{name: "topk attribute", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("TopK", "topk", []string{"x"}, []string{"values", "indices"}, onnx.AttrInt("k", 2))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 5)}, order: []string{"x"}, outputs: []string{"values", "indices"},
			check: expectAttrs("TopK")},
		{name: "upsample-7 nearest", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Upsample", "up", []string{"x"}, []string{"y"}, onnx.AttrFloats("scales", 1, 1, 2, 3))},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 2, 2)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Resize", "nearest_mode", "coordinate_transformation_mode")},
		{name: "upsample-7 linear", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Upsample", "up", []string{"x"}, []string{"y"}, onnx.AttrFloats("scales", 1, 1, 2, 2), onnx.AttrString("mode", "linear"))},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 2, 3, 3)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("Resize", "mode", "coordinate_transformation_mode")},
		{name: "upsample-9 scales input", from: 9,
			nodes:  []*onnxpb.NodeProto{nn("Upsample", "up", []string{"x", "scales"}, []string{"y"})},
			inits:  map[string]*onnx.Tensor{"scales": f32([]int64{4}, 1, 1, 3, 2)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 2, 3)}, order: []string{"x"}, outputs: []string{"y"}},
		{name: "resize-10 nearest downsampling", from: 10,
			nodes:  []*onnxpb.NodeProto{nn("Resize", "rs", []string{"x", "scales"}, []string{"y"})},
			inits:  map[string]*onnx.Tensor{"scales": f32([]int64{4}, 1, 1, 0.6, 0.6)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 5, 5)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if n := node(m, "Resize"); len(n.Input) != 3 || n.Input[1] != "" {
					t.Errorf("Resize inputs %q: want X, no roi, scales", n.Input)
				}
			}},
		{name: "resize-10 linear", from: 10,
			nodes:  []*onnxpb.NodeProto{nn("Resize", "rs", []string{"x", "scales"}, []string{"y"}, onnx.AttrString("mode", "linear"))},
			inits:  map[string]*onnx.Tensor{"scales": f32([]int64{4}, 1, 1, 2, 1.5)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 3, 4)}, order: []string{"x"}, outputs: []string{"y"}},
		{name: "split attribute", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Split", "split", []string{"x"}, []string{"a", "b"}, onnx.AttrInt("axis", 1), onnx.AttrInts("split", 1, 2))},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3)}, order: []string{"x"}, outputs: []string{"a", "b"},
			check: expectAttrs("Split", "axis")},
		{name: "split equal parts", from: 11,
			nodes:  []*onnxpb.NodeProto{nn("Split", "split", []string{"x"}, []string{"a", "b"})},
			inputs: map[string]*onnx.Tensor{"x": seq(4, 2)}, order: []string{"x"}, outputs: []string{"a", "b"},
			check: expectAttrs("Split", "num_outputs")},
		{name: "axes attributes", from: 7,
			nodes: []*onnxpb.NodeProto{
				nn("Unsqueeze", "us", []string{"x"}, []string{"u"}, onnx.AttrInts("axes", 0, 3)),
				nn("Squeeze", "sq", []string{"u"}, []string{"s"}, onnx.AttrInts("axes", 0)),
				nn("ReduceSum", "rs", []string{"s"}, []string{"sum"}, onnx.AttrInts("axes", 1), onnx.AttrInt("keepdims", 0)),
				nn("ReduceMean", "rm", []string{"s"}, []string{"mean"}, onnx.AttrInts("axes", 0, 2)),
				nn("ReduceMax", "rx", []string{"s"}, []string{"max"}),
			},
			inputs: map[string]*onnx.Tensor{"x": seq(2, 3)}, order: []string{"x"}, outputs: []string{"sum", "mean", "max"},
			check: func(t *testing.T, m *onnx.Model) {
				for _, op := range []string{"Unsqueeze", "Squeeze", "ReduceSum", "ReduceMean"} {
					if n := node(m, op); len(n.GetInput()) != 2 {
						t.Errorf("%s inputs %q: want axes as input", op, n.GetInput())
					}
				}
			}},
		{name: "dropout ratio and unread mask", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("Dropout", "drop", []string{"x"}, []string{"y", "mask"}, onnx.AttrFloat("ratio", 0.3))},
			inputs: map[string]*onnx.Tensor{"x": seq(3, 2)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if n := node(m, "Dropout"); len(n.Output) != 1 || len(n.Input) != 2 || len(n.Attribute) != 0 {
					t.Errorf("Dropout %v: want ratio input, no mask", n)
				}
			}},
		{name: "batchnorm spatial", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("BatchNormalization", "bn", []string{"x", "s", "b", "mean", "var"}, []string{"y"}, onnx.AttrInt("spatial", 1), onnx.AttrFloat("epsilon", 1e-3))},
			inits:  map[string]*onnx.Tensor{"s": f32([]int64{2}, 1, 2), "b": f32([]int64{2}, 0, 1), "mean": f32([]int64{2}, 0.5, -1), "var": f32([]int64{2}, 1, 4)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 2, 2, 2)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("BatchNormalization", "epsilon")},
		{name: "scatter", from: 9,
			nodes:  []*onnxpb.NodeProto{nn("Scatter", "sc", []string{"data", "idx", "upd"}, []string{"y"}, onnx.AttrInt("axis", 1))},
			inits:  map[string]*onnx.Tensor{"idx": i64([]int64{1, 2}, 1, 3), "upd": f32([]int64{1, 2}, 10, 20)},
			inputs: map[string]*onnx.Tensor{"data": seq(1, 5)}, order: []string{"data"}, outputs: []string{"y"},
			check: expectAttrs("ScatterElements", "axis")},
		{name: "image scaler", from: 7,
			nodes:  []*onnxpb.NodeProto{nn("ImageScaler", "is", []string{"x"}, []string{"y"}, onnx.AttrFloat("scale", 2), onnx.AttrFloats("bias", 1, -1))},
			inputs: map[string]*onnx.Tensor{"x": f32([]int64{1, 2, 1, 2}, 1, 2, 3, 4)}, order: []string{"x"}, outputs: []string{"y"},
			want: map[string]*onnx.Tensor{"y": f32([]int64{1, 2, 1, 2}, 3, 5, 5, 7)}},
		{name: "opset-6 broadcast on axis, ranks declared", from: 6,
			nodes:  []*onnxpb.NodeProto{nn("Add", "add", []string{"x", "b"}, []string{"y"}, onnx.AttrInt("broadcast", 1), onnx.AttrInt("axis", 1))},
			inits:  map[string]*onnx.Tensor{"b": f32([]int64{2}, 10, 20)},
			inputs: map[string]*onnx.Tensor{"x": f32([]int64{1, 2, 2}, 1, 2, 3, 4)}, order: []string{"x"}, outputs: []string{"y"},
			want: map[string]*onnx.Tensor{"y": f32([]int64{1, 2, 2}, 11, 12, 23, 24)}},
		{name: "opset-6 broadcast on axis, ranks unknown", from: 6, noShapes: true,
			nodes:  []*onnxpb.NodeProto{nn("Mul", "mul", []string{"x", "b"}, []string{"y"}, onnx.AttrInt("broadcast", 1), onnx.AttrInt("axis", 0))},
			inputs: map[string]*onnx.Tensor{"x": f32([]int64{2, 1, 2}, 1, 2, 3, 4), "b": f32([]int64{2}, 10, -1)}, order: []string{"x", "b"}, outputs: []string{"y"},
			want: map[string]*onnx.Tensor{"y": f32([]int64{2, 1, 2}, 10, 20, -3, -4)}},
		{name: "roialign default mode", from: 10,
			nodes: []*onnxpb.NodeProto{nn("RoiAlign", "ra", []string{"x", "rois", "bi"}, []string{"y"},
				onnx.AttrInt("output_height", 2), onnx.AttrInt("output_width", 2), onnx.AttrInt("sampling_ratio", 2))},
			inits:  map[string]*onnx.Tensor{"rois": f32([]int64{1, 4}, 0.3, 0.2, 3.1, 2.7), "bi": i64([]int64{1}, 0)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 4, 4)}, order: []string{"x"}, outputs: []string{"y"},
			check: expectAttrs("RoiAlign", "output_height", "output_width", "sampling_ratio", "coordinate_transformation_mode")},
		{name: "gridsample bilinear", from: 16,
			nodes:  []*onnxpb.NodeProto{nn("GridSample", "gs", []string{"x", "grid"}, []string{"y"}, onnx.AttrString("mode", "bilinear"))},
			inits:  map[string]*onnx.Tensor{"grid": f32([]int64{1, 2, 2, 2}, -0.9, -0.5, 0.1, 0.3, 0.7, -0.2, 0.95, 0.9)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 1, 3, 3)}, order: []string{"x"}, outputs: []string{"y"},
			check: func(t *testing.T, m *onnx.Model) {
				if got := string(node(m, "GridSample").GetAttribute()[0].GetS()); got != "linear" {
					t.Errorf("mode %q, want linear", got)
				}
			}},
		{name: "groupnorm per group", from: 18,
			nodes:  []*onnxpb.NodeProto{nn("GroupNormalization", "gn", []string{"x", "s", "b"}, []string{"y"}, onnx.AttrInt("num_groups", 2))},
			inits:  map[string]*onnx.Tensor{"s": f32([]int64{2}, 1, 2), "b": f32([]int64{2}, 0.5, -0.5)},
			inputs: map[string]*onnx.Tensor{"x": seq(1, 4, 2, 2)}, order: []string{"x"}, outputs: []string{"y"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model(t)
			plain := ort.Options{Optimization: ort.OptimizeDisabled}
			want := tc.want
			if want == nil {
				want = run(t, session(t, tc.name, mustBytes(t, m), plain), tc.inputs)
			}
			// Every target after the model's opset must give a model that
			// runs and computes the same (nodes an adapter adds must be in
			// the target's form, not 21's); checks are for 21.
			for target := tc.from + 1; target <= 21; target++ {
				up := m.Clone()
				if err := up.UpgradeOpset(target); err != nil {
					t.Fatalf("to %d: %v", target, err)
				}
				if up.Opset("") != target {
					t.Errorf("opset %d after upgrade to %d", up.Opset(""), target)
				}
				if tc.check != nil && target == 21 {
					tc.check(t, up)
				}
				label := fmt.Sprintf("%s@%d", tc.name, target)
				got := run(t, session(t, label, mustBytes(t, up), plain), tc.inputs)
				sameOutputs(t, label, want, got, 1e-6)
			}
		})
	}
}

// TestUpgradeSubgraphs converts operators inside If branches.
func TestUpgradeSubgraphs(t *testing.T) {
	branch := func(name string, axes int64) *onnxpb.GraphProto {
		return &onnxpb.GraphProto{
			Name:   proto.String(name),
			Node:   []*onnxpb.NodeProto{onnx.NewNode("Unsqueeze", name+"_us", []string{"x"}, []string{name + "_y"}, onnx.AttrInts("axes", axes))},
			Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo(name+"_y", onnx.Float, nil)},
		}
	}
	g := &onnxpb.GraphProto{
		Name:   proto.String("main"),
		Node:   []*onnxpb.NodeProto{onnx.NewNode("If", "if", []string{"c"}, []string{"y"}, onnx.AttrGraph("then_branch", branch("then", 0)), onnx.AttrGraph("else_branch", branch("else", 1)))},
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("c", onnx.Bool, []onnx.Dim{}), onnx.ValueInfo("x", onnx.Float, []onnx.Dim{2})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, nil)},
	}
	m := onnx.NewModel(g, 11)
	if err := m.UpgradeOpset(21); err != nil {
		t.Fatal(err)
	}
	for _, cond := range []bool{true, false} {
		out := run(t, session(t, "if@21", mustBytes(t, m), ort.Options{}), map[string]*onnx.Tensor{
			"c": onnx.NewTensor([]int64{}, []bool{cond}), "x": f32([]int64{2}, 1, 2)})
		wantDims := []int64{1, 2}
		if !cond {
			wantDims = []int64{2, 1}
		}
		if diff := cmp.Diff(wantDims, out["y"].Dims); diff != "" {
			t.Errorf("cond %v: dims (-want +got):\n%s", cond, diff)
		}
	}
	for _, ref := range m.Graphs()[1:] {
		if len(ref.Graph.GetInitializer()) != 1 || len(ref.Graph.GetNode()[0].GetInput()) != 2 {
			t.Errorf("subgraph %s: axes not moved to an input of the subgraph", ref.Path)
		}
	}
}

func TestUpgradeRefusals(t *testing.T) {
	nn := onnx.NewNode
	body := &onnxpb.GraphProto{Name: proto.String("body")}
	g := &onnxpb.GraphProto{
		Name: proto.String("refused"),
		Node: []*onnxpb.NodeProto{
			nn("BatchNormalization", "bn", []string{"x", "s", "b", "m", "v"}, []string{"y"}, onnx.AttrInt("spatial", 0)),
			nn("Dropout", "drop", []string{"y"}, []string{"z", "mask"}),
			nn("Add", "use_mask", []string{"z", "mask"}, []string{"out"}),
			nn("Crop", "crop", []string{"x"}, []string{"cropped"}),
			nn("Scan", "scan", []string{"", "x"}, []string{"scanned"}, onnx.AttrGraph("body", body), onnx.AttrInt("num_scan_inputs", 1)),
			nn("Relu", "fine", []string{"x"}, []string{"r"}),
		},
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, []onnx.Dim{1, 2, 2, 2})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("out", onnx.Float, nil)},
	}
	m := onnx.NewModel(g, 7)
	before := proto.Clone(m.Proto)
	err := m.UpgradeOpset(21)
	var r *onnx.RefusalError
	if !errors.As(err, &r) {
		t.Fatalf("error = %v, want a *RefusalError", err)
	}
	var got []string
	for _, n := range r.Nodes {
		got = append(got, n.OpType+" "+n.Node)
	}
	if diff := cmp.Diff([]string{"BatchNormalization bn", "Dropout drop", "Crop crop", "Scan scan"}, got); diff != "" {
		t.Errorf("refused nodes (-want +got):\n%s", diff)
	}
	for _, want := range []string{"cannot upgrade from opset 7 to 21", "spatial=0", "mask output is read", "experimental operator", "Scan-8"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if !proto.Equal(before, m.Proto) {
		t.Errorf("a refused upgrade changed the model")
	}
}

func TestUpgradeArguments(t *testing.T) {
	tests := []struct {
		from, target int64
		want         string
	}{
		{7, 22, "target opset 22 is past 21"},
		{11, 9, "downgrades are not supported"},
		{5, 21, "opset 5 is older than 6"},
		{13, 13, ""},
	}
	for _, tc := range tests {
		m := onnx.NewModel(&onnxpb.GraphProto{Name: proto.String("g")}, tc.from)
		err := m.UpgradeOpset(tc.target)
		if tc.want == "" {
			if err != nil || m.Opset("") != tc.from {
				t.Errorf("%d->%d: %v", tc.from, tc.target, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%d->%d: error = %v, want %q", tc.from, tc.target, err, tc.want)
		}
	}
	m := onnx.NewModel(&onnxpb.GraphProto{Name: proto.String("g")}, 7)
	m.Proto.OpsetImport = m.Proto.OpsetImport[:0]
	if err := m.UpgradeOpset(21); err == nil || !strings.Contains(err.Error(), "imports no default-domain") {
		t.Errorf("no default domain: error = %v", err)
	}
}
