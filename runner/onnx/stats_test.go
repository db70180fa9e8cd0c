package onnx_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
)

func TestStatsMNIST(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	got, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Weights: 16*4*4*10 + 16*8*5*5 + 8*1*5*5 + 8 + 16 + 10 floats, plus two
	// INT64[2] reshape targets.
	const params = 2560 + 3200 + 200 + 8 + 16 + 10
	want := &onnx.Stats{
		IRVersion: 3, Opset: 7, Opsets: map[string]int64{"": 7},
		Producer: "CNTK", ProducerVersion: "2.5.1",
		Inputs:  []onnx.ValueStats{{Name: "Input3", DType: "FLOAT", Shape: []string{"1", "1", "28", "28"}}},
		Outputs: []onnx.ValueStats{{Name: "Plus214_Output_0", DType: "FLOAT", Shape: []string{"1", "10"}}},
		Ops:     map[string]int{"Add": 3, "Conv": 2, "MatMul": 1, "MaxPool": 2, "Relu": 2, "Reshape": 2},
		Nodes:   12, Params: params, NonZero: params,
		WeightBytes: 4*params + 2*2*8, ModelBytes: 26454,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// 3000 of Parameter87's 3200 values pruned, then stored sparse:
	// non-zeros drop by 3000, parameters stay, weight bytes shrink to 200
	// values with int64 linear indices.
	w := m.Weight("Parameter87")
	vals, _ := w.Float32s()
	for i := range vals[:3000] {
		vals[i] = 0
	}
	if err := w.Set(onnx.NewTensor(w.Dims, vals)); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sparsify([]string{"Parameter87"}, onnx.LinearIndices); err != nil {
		t.Fatal(err)
	}
	pruned, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Params != params || pruned.NonZero != params-3000 {
		t.Errorf("after pruning: params %d nonzero %d, want %d and %d", pruned.Params, pruned.NonZero, params, params-3000)
	}
	if wantSparsity := 3000.0 / params; pruned.Sparsity < wantSparsity-1e-9 || pruned.Sparsity > wantSparsity+1e-9 {
		t.Errorf("sparsity %g, want %g", pruned.Sparsity, wantSparsity)
	}
	if wantBytes := got.WeightBytes - 3200*4 + 200*(4+8); pruned.WeightBytes != wantBytes {
		t.Errorf("weight bytes %d, want %d", pruned.WeightBytes, wantBytes)
	}
}

func TestStatsPPOCRAndQuantized(t *testing.T) {
	s, err := onnxtest.Model(t, "ppocr-det.onnx").Stats()
	if err != nil {
		t.Fatal(err)
	}
	in := s.Inputs[0]
	if in.Name != "x" || in.DType != "FLOAT" || in.Shape[1] != "3" || in.Shape[0] == "" || in.Shape[0] == "?" || in.Shape[2] == in.Shape[3] {
		t.Errorf("input %+v: want x FLOAT [N, 3, H, W] with named dynamic dims", in)
	}
	if s.Ops["Constant"] != 342 || s.Ops["Conv"] != 62 || s.Params != 1171841 {
		t.Errorf("ops %v params %d", s.Ops, s.Params)
	}

	// A QDQ weight: INT8 data dequantized by DequantizeLinear.
	q, err := onnx.TensorToProto(onnx.NewTensor([]int64{2, 3}, []int8{1, 0, -3, 4, 0, 6}), "wq")
	if err != nil {
		t.Fatal(err)
	}
	scale, _ := onnx.TensorToProto(onnx.NewTensor([]int64{}, []float32{0.5}), "scale")
	g := &onnxpb.GraphProto{
		Name:        proto.String("qdq"),
		Initializer: []*onnxpb.TensorProto{q, scale},
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("DequantizeLinear", "dq", []string{"wq", "scale"}, []string{"w"}),
			onnx.NewNode("MatMul", "mm", []string{"x", "w"}, []string{"y"}),
		},
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, []onnx.Dim{"batch", 2})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, []onnx.Dim{"batch", 3})},
	}
	qs, err := onnx.NewModel(g, 13).Stats()
	if err != nil {
		t.Fatal(err)
	}
	if qs.QuantizedParams != 6 || qs.Params != 1 || qs.WeightBytes != 6+4 {
		t.Errorf("QDQ stats: quantized %d params %d bytes %d; want 6, 1 (the scale), 10", qs.QuantizedParams, qs.Params, qs.WeightBytes)
	}
	if diff := cmp.Diff([]string{"batch", "2"}, qs.Inputs[0].Shape); diff != "" {
		t.Errorf("input shape (-want +got):\n%s", diff)
	}
}

// TestStatsLowPrecisionFloats: weights stored as FLOAT8 or FLOAT4 (bit
// patterns, which cannot be read as float32) are counted, their zeros
// told by their bit patterns (+0 and -0, where the format has them);
// those DequantizeLinear turns back into floats (FP8 QDQ) count as
// quantized, as INT8 ones do. Stats used to fail on them, and so did
// `kompress inspect`.
func TestStatsLowPrecisionFloats(t *testing.T) {
	raw := func(name string, dt onnx.DataType, bits ...byte) *onnxpb.TensorProto {
		tp, err := onnx.TensorToProto(&onnx.Tensor{DType: dt, Dims: []int64{int64(len(bits))}, Data: bits}, name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	scale, _ := onnx.TensorToProto(onnx.NewTensor([]int64{}, []float32{0.5}), "scale")
	tests := []struct {
		name             string
		w                *onnxpb.TensorProto
		dequantized      bool
		params, nonzero  int64
		quantized, bytes int64
	}{
		// +0 and -0 are zeros; 0x38 is 1.0, 0x7f NaN.
		{name: "e4m3fn", w: raw("w", onnx.Float8E4M3FN, 0x00, 0x80, 0x38, 0x7f), params: 4, nonzero: 2, bytes: 4},
		// The FNUZ formats have no -0: 0x80 is their NaN.
		{name: "e4m3fnuz", w: raw("w", onnx.Float8E4M3FNUZ, 0x00, 0x80, 0x40), params: 3, nonzero: 2, bytes: 3},
		{name: "e5m2", w: raw("w", onnx.Float8E5M2, 0x80, 0x3c, 0x00), params: 3, nonzero: 1, bytes: 3},
		{name: "e5m2fnuz", w: raw("w", onnx.Float8E5M2FNUZ, 0x00, 0x80), params: 2, nonzero: 1, bytes: 2},
		// E8M0 is a power of two: never zero.
		{name: "e8m0", w: raw("w", onnx.Float8E8M0, 0x00, 0x7f, 0xff), params: 3, nonzero: 3, bytes: 3},
		// 4-bit: 0b0000 and 0b1000 are ±0, two to a byte when stored.
		{name: "float4e2m1", w: raw("w", onnx.Float4E2M1, 0x0, 0x8, 0x2, 0xf), params: 4, nonzero: 2, bytes: 2},
		{name: "e4m3fn dequantized", w: raw("w", onnx.Float8E4M3FN, 0x00, 0x38, 0x40), dequantized: true, params: 1, nonzero: 1, quantized: 3, bytes: 3 + 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &onnxpb.GraphProto{
				Name:        proto.String("fp8"),
				Initializer: []*onnxpb.TensorProto{tc.w},
				Node:        []*onnxpb.NodeProto{onnx.NewNode("Cast", "cast", []string{"w"}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float)))},
				Output:      []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, []onnx.Dim{onnx.Dim(len(tc.w.GetDims()))})},
			}
			if tc.dequantized {
				g.Initializer = append(g.Initializer, scale)
				g.Node = []*onnxpb.NodeProto{onnx.NewNode("DequantizeLinear", "dq", []string{"w", "scale"}, []string{"y"})}
			}
			m, err := onnx.Load(mustMarshal(t, onnx.NewModel(g, 23).Proto))
			if err != nil {
				t.Fatal(err)
			}
			s, err := m.Stats()
			if err != nil {
				t.Fatal(err)
			}
			got := []int64{s.Params, s.NonZero, s.QuantizedParams, s.WeightBytes}
			if diff := cmp.Diff([]int64{tc.params, tc.nonzero, tc.quantized, tc.bytes}, got); diff != "" {
				t.Errorf("params, nonzero, quantized, weight bytes (-want +got):\n%s", diff)
			}
		})
	}
}

// TestExposeOutputs adds ppocr-det's Conv outputs to the graph outputs and
// reads their runtime shapes, as MAC counting does.
func TestExposeOutputs(t *testing.T) {
	m := onnxtest.Model(t, "ppocr-det.onnx")
	var convs []string
	for _, n := range m.Proto.GetGraph().GetNode() {
		if n.GetOpType() == "Conv" {
			convs = append(convs, n.GetOutput()[0])
		}
	}
	e, err := m.ExposeOutputs(convs)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Proto.GetGraph().GetOutput()) != 1 {
		t.Errorf("ExposeOutputs changed the original model")
	}
	out := run(t, session(t, "exposed", mustBytes(t, e), ort.Options{}), map[string]*onnx.Tensor{"x": ppocrInput(2)})
	if len(out) != 1+len(convs) {
		t.Fatalf("%d outputs, want %d", len(out), 1+len(convs))
	}
	first := out[convs[0]]
	if diff := cmp.Diff([]int64{2, 16, 32, 32}, first.Dims); diff != "" {
		t.Errorf("first Conv output dims (-want +got):\n%s", diff)
	}
	if _, err := m.ExposeOutputs([]string{"nope", convs[0]}); err == nil || !strings.Contains(err.Error(), `no tensors named ["nope"]`) {
		t.Errorf("unknown name: error = %v", err)
	}
}
