package onnx_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// TestInt4WeightsInORT stores INT4 and UINT4 weights (packed two per byte,
// odd count) behind a blocked DequantizeLinear (opset 21, IR 10) and checks
// ONNX Runtime decodes them to the values the package wrote.
func TestInt4WeightsInORT(t *testing.T) {
	tests := []struct {
		name      string
		w         *onnx.Tensor
		zeroPoint *onnx.Tensor
		want      []float32
	}{
		{"int4", &onnx.Tensor{DType: onnx.Int4, Dims: []int64{3, 3}, Data: []int8{-8, -1, 0, 1, 7, 3, -4, 5, -2}}, nil,
			[]float32{-8, -1, 0, 1, 7, 3, -4, 5, -2}},
		{"uint4", &onnx.Tensor{DType: onnx.Uint4, Dims: []int64{3, 3}, Data: []uint8{0, 15, 8, 1, 9, 2, 3, 4, 5}},
			&onnx.Tensor{DType: onnx.Uint4, Dims: []int64{}, Data: []uint8{8}},
			[]float32{-8, 7, 0, -7, 1, -6, -5, -4, -3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wq, err := onnx.TensorToProto(tc.w, "wq")
			if err != nil {
				t.Fatal(err)
			}
			scale, _ := onnx.TensorToProto(onnx.NewTensor([]int64{}, []float32{1}), "scale")
			inits := []*onnxpb.TensorProto{wq, scale}
			dqIn := []string{"wq", "scale"}
			if tc.zeroPoint != nil {
				zp, err := onnx.TensorToProto(tc.zeroPoint, "zp")
				if err != nil {
					t.Fatal(err)
				}
				inits = append(inits, zp)
				dqIn = append(dqIn, "zp")
			}
			g := &onnxpb.GraphProto{
				Name:        proto.String(tc.name),
				Initializer: inits,
				Node: []*onnxpb.NodeProto{
					onnx.NewNode("DequantizeLinear", "dq", dqIn, []string{"w"}),
					onnx.NewNode("MatMul", "mm", []string{"x", "w"}, []string{"y"}),
				},
				Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, []onnx.Dim{3, 3})},
				Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, []onnx.Dim{3, 3})},
			}
			m := onnx.NewModel(g, 21)
			if m.Proto.GetIrVersion() != 10 {
				t.Errorf("IR %d for opset 21, want 10", m.Proto.GetIrVersion())
			}
			identity := onnx.NewTensor([]int64{3, 3}, []float32{1, 0, 0, 0, 1, 0, 0, 0, 1})
			out := run(t, session(t, tc.name, mustBytes(t, m), ort.Options{}), map[string]*onnx.Tensor{"x": identity})
			if diff := cmp.Diff(tc.want, out["y"].Data); diff != "" {
				t.Errorf("dequantized weights (-want +got):\n%s", diff)
			}
			back, err := m.Weight("wq").Tensor()
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.w, back); diff != "" {
				t.Errorf("weight read back (-want +got):\n%s", diff)
			}
		})
	}
}
