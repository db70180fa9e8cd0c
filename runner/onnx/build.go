package onnx

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// NewNode makes a node of the default (ai.onnx) domain.
func NewNode(opType, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	n := &onnxpb.NodeProto{
		OpType:    proto.String(opType),
		Input:     inputs,
		Output:    outputs,
		Attribute: attrs,
	}
	if name != "" {
		n.Name = proto.String(name)
	}
	return n
}

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrString makes a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrFloats makes a FLOATS attribute.
func AttrFloats(name string, v ...float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOATS.Enum(), Floats: v}
}

// AttrTensor makes a TENSOR attribute.
func AttrTensor(name string, t *onnxpb.TensorProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t}
}

// AttrGraph makes a GRAPH attribute (If branches, Loop/Scan bodies).
func AttrGraph(name string, g *onnxpb.GraphProto) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: g}
}

// Dim is a tensor dimension for ValueInfo: an int (fixed size) or a string
// (a named, dynamic dimension such as "N"); nil leaves it unknown.
type Dim = any

// ValueInfo declares a tensor value of type dt. With no dims the shape is
// left unknown; pass an empty, non-nil slice for a scalar.
func ValueInfo(name string, dt DataType, dims []Dim) *onnxpb.ValueInfoProto {
	tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt))}
	if dims != nil {
		tt.Shape = &onnxpb.TensorShapeProto{Dim: make([]*onnxpb.TensorShapeProto_Dimension, len(dims))}
		for i, d := range dims {
			dim := &onnxpb.TensorShapeProto_Dimension{}
			switch v := d.(type) {
			case int:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: int64(v)}
			case int64:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}
			case string:
				dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: v}
			case nil:
			default:
				panic(fmt.Sprintf("onnx.ValueInfo: dim %d is %T, expected int, int64, string or nil", i, d))
			}
			tt.Shape.Dim[i] = dim
		}
	}
	return &onnxpb.ValueInfoProto{
		Name: proto.String(name),
		Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}},
	}
}

// NewModel wraps a graph in a model importing the default domain at opset
// and the IR version that opset needs.
func NewModel(g *onnxpb.GraphProto, opset int64) *Model {
	return &Model{Proto: &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersionForOpset(opset)),
		ProducerName: proto.String("kompress"),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}},
		Graph:        g,
	}}
}

// IRVersionForOpset is the lowest IR version that supports a default-domain
// opset (from the ONNX versioning table).
func IRVersionForOpset(opset int64) int64 {
	switch {
	case opset <= 9:
		return 4 // IR 3 covers opsets up to 8, but IR 4 lets initializers be absent from graph inputs
	case opset == 10:
		return 5
	case opset == 11:
		return 6
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	case opset <= 22:
		return 10
	}
	return 11
}
