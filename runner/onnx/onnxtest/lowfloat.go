package onnxtest

import (
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// LowPrecisionFloats is a valid model (opset 23) whose weights are 8- and
// 4-bit floats: a FLOAT8E4M3FN weight cast to float (bits 0x00 and 0x80,
// +0 and -0, then 1.0 and 2.0), a FLOAT4E2M1 one (one zero of three) and a
// FLOAT8E5M2 weight that DequantizeLinear turns back into floats (FP8
// QDQ). Stats counts 8 parameters (the scale included), 5 of them
// non-zero, and 3 quantized.
func LowPrecisionFloats() *onnxpb.ModelProto {
	bits := func(name string, t onnx.DataType, b ...byte) *onnxpb.TensorProto {
		tp, err := onnx.TensorToProto(&onnx.Tensor{DType: t, Dims: []int64{int64(len(b))}, Data: b}, name)
		if err != nil {
			panic(err)
		}
		return tp
	}
	scale, err := onnx.TensorToProto(onnx.NewTensor([]int64{}, []float32{0.5}), "scale")
	if err != nil {
		panic(err)
	}
	cast := func(in, out string) *onnxpb.NodeProto {
		return onnx.NewNode("Cast", "cast_"+in, []string{in}, []string{out}, onnx.AttrInt("to", int64(onnx.Float)))
	}
	g := &onnxpb.GraphProto{
		Name: proto.String("low-precision-floats"),
		Initializer: []*onnxpb.TensorProto{
			bits("w8", onnx.Float8E4M3FN, 0x00, 0x80, 0x38, 0x40),
			bits("w4", onnx.Float4E2M1, 0x0, 0x2, 0x4),
			bits("q8", onnx.Float8E5M2, 0x3c, 0x00, 0x40),
			scale,
		},
		Node: []*onnxpb.NodeProto{
			cast("w8", "a"), cast("w4", "b"),
			onnx.NewNode("DequantizeLinear", "dq", []string{"q8", "scale"}, []string{"c"}),
		},
		Output: []*onnxpb.ValueInfoProto{
			onnx.ValueInfo("a", onnx.Float, []onnx.Dim{4}),
			onnx.ValueInfo("b", onnx.Float, []onnx.Dim{3}),
			onnx.ValueInfo("c", onnx.Float, []onnx.Dim{3}),
		},
	}
	return onnx.NewModel(g, 23).Proto
}
