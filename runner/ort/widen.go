package ort

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// onnxruntime_go copies an output ONNX Runtime allocated as one byte per
// element when it has no Go type for the element type, and then fails on
// FLOAT16, BFLOAT16 and the 4-bit types. So the session's copy of the model
// ends each such output with an exact widening Cast (to FLOAT, INT8 or
// UINT8) and Run narrows the result back: every value survives unchanged.

const widenSuffix = "__kompress_widened"

func widened(dt onnx.DataType) onnx.DataType {
	switch dt {
	case onnx.Float16, onnx.BFloat16:
		return onnx.Float
	case onnx.Int4:
		return onnx.Int8
	case onnx.Uint4:
		return onnx.Uint8
	}
	return onnx.Undefined
}

// widenOutputs returns the model to give ONNX Runtime and the outputs it
// widened (nil when none needed it: the model bytes are returned as is).
func widenOutputs(model []byte, outs []IOInfo) ([]byte, map[string]bool, error) {
	casts := map[string]bool{}
	for _, o := range outs {
		if widened(o.DType) != onnx.Undefined {
			casts[o.Name] = true
		}
	}
	if len(casts) == 0 {
		return model, nil, nil
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, nil, err
	}
	g := m.GetGraph()
	for _, vi := range g.GetOutput() {
		if !casts[vi.GetName()] {
			continue
		}
		dt := onnx.DataType(vi.GetType().GetTensorType().GetElemType())
		wide := vi.GetName() + widenSuffix
		g.Node = append(g.Node, onnx.NewNode("Cast", wide, []string{vi.GetName()}, []string{wide}, onnx.AttrInt("to", int64(widened(dt)))))
		vi.Name = proto.String(wide)
		vi.Type.GetTensorType().ElemType = proto.Int32(int32(widened(dt)))
	}
	b, err := proto.Marshal(&m)
	return b, casts, err
}

// ortNames lists the names ONNX Runtime knows the values by.
func ortNames(dst []string, infos []IOInfo, casts map[string]bool) []string {
	for _, in := range infos {
		if casts[in.Name] {
			dst = append(dst, in.Name+widenSuffix)
		} else {
			dst = append(dst, in.Name)
		}
	}
	return dst
}

// castBack narrows a widened output to its declared type, exactly.
func castBack(t *onnx.Tensor, dt onnx.DataType) (*onnx.Tensor, error) {
	switch d := t.Data.(type) {
	case []float32:
		if dt == onnx.Float16 || dt == onnx.BFloat16 {
			return onnx.FromFloat32s(dt, t.Dims, d)
		}
	case []int8:
		if dt == onnx.Int4 {
			return &onnx.Tensor{DType: dt, Dims: t.Dims, Data: d}, nil
		}
	case []uint8:
		if dt == onnx.Uint4 {
			return &onnx.Tensor{DType: dt, Dims: t.Dims, Data: d}, nil
		}
	}
	return nil, fmt.Errorf("widened output is %v, cannot narrow it to %v", t.DType, dt)
}
