package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// elemTypes infers the element type of every tensor of the main graph that
// it can: from declarations (inputs, outputs, value_info), constants, and a
// rule per operator for node outputs. fp16 conversion needs to know which
// tensors are float32; a tensor missing from the map is treated as not.
func elemTypes(ix *index) map[string]onnx.DataType {
	types := map[string]onnx.DataType{}
	for name, c := range ix.consts {
		types[name] = c.dtype()
	}
	g := ix.model.Proto.GetGraph()
	declared := map[string]onnx.DataType{}
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, vi := range list {
			if tt := vi.GetType().GetTensorType(); tt != nil && tt.GetElemType() != 0 {
				declared[vi.GetName()] = onnx.DataType(tt.GetElemType())
			}
		}
	}
	for name, t := range declared {
		types[name] = t
	}
	for _, n := range g.GetNode() {
		for i, out := range n.GetOutput() {
			if out == "" {
				continue
			}
			if t, ok := declared[out]; ok {
				types[out] = t
				continue
			}
			if t := outputType(n, i, types); t != onnx.Undefined {
				types[out] = t
			}
		}
	}
	return types
}

// outputType is the element type of output i of n given its inputs' types.
func outputType(n *onnxpb.NodeProto, i int, types map[string]onnx.DataType) onnx.DataType {
	in := func(k int) onnx.DataType {
		if k < len(n.GetInput()) {
			return types[n.GetInput()[k]]
		}
		return onnx.Undefined
	}
	dtypeAttr := func(def onnx.DataType) onnx.DataType {
		if v := onnx.IntAttr(n, "dtype", -1); v >= 0 {
			return onnx.DataType(v)
		}
		return def
	}
	if !onnx.IsDefaultDomain(n.GetDomain()) {
		return in(0)
	}
	switch n.GetOpType() {
	case "Cast":
		return onnx.DataType(onnx.IntAttr(n, "to", 0))
	case "CastLike":
		return in(1)
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin", "NonMaxSuppression":
		return onnx.Int64
	case "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf":
		return onnx.Bool
	case "TopK", "MaxPool", "Unique":
		if i > 0 {
			return onnx.Int64
		}
		return in(0)
	case "Dropout":
		if i > 0 {
			return onnx.Bool
		}
		return in(0)
	case "QuantizeLinear":
		if t := in(2); t != onnx.Undefined {
			return t
		}
		return dtypeAttr(onnx.Uint8)
	case "DynamicQuantizeLinear":
		if i == 1 {
			return onnx.Float
		}
		return onnx.Uint8
	case "DequantizeLinear":
		return in(1)
	case "MatMulInteger", "ConvInteger":
		return onnx.Int32
	case "ConstantOfShape":
		for _, a := range n.GetAttribute() {
			if a.GetName() == "value" && a.GetT() != nil {
				return onnx.DataType(a.GetT().GetDataType())
			}
		}
		return onnx.Float
	case "Constant":
		for _, a := range n.GetAttribute() {
			switch a.GetName() {
			case "value":
				return onnx.DataType(a.GetT().GetDataType())
			case "value_float", "value_floats":
				return onnx.Float
			case "value_int", "value_ints":
				return onnx.Int64
			case "value_string", "value_strings":
				return onnx.String
			}
		}
	case "Where":
		return in(1)
	case "OneHot":
		return in(2)
	case "RandomNormal", "RandomUniform":
		return dtypeAttr(onnx.Float)
	case "RandomNormalLike", "RandomUniformLike", "EyeLike":
		return dtypeAttr(in(0))
	case "If", "Loop", "Scan":
		return subgraphOutputType(n, i)
	}
	return in(0)
}

// subgraphOutputType reads an If, Loop or Scan output's type from the
// body's declared outputs.
func subgraphOutputType(n *onnxpb.NodeProto, i int) onnx.DataType {
	attr, offset := "then_branch", 0
	switch n.GetOpType() {
	case "Loop":
		attr, offset = "body", 1 // body outputs: condition, then the loop outputs
	case "Scan":
		attr = "body"
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == attr && a.GetG() != nil {
			outs := a.GetG().GetOutput()
			if i+offset < len(outs) {
				return onnx.DataType(outs[i+offset].GetType().GetTensorType().GetElemType())
			}
		}
	}
	return onnx.Undefined
}
