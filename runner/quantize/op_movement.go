package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// movement is an operator that moves or selects values without computing
// new ones (MaxPool, Reshape, Transpose, ...). passes: static quantization
// lets a quantized activation through it, its output sharing the input's
// parameters. eval: constant folding computes it when a weight reaches its
// operator through it (mnist-8 reshapes its last weight before the
// MatMul), as ONNX Runtime's constant folding would at load time.
type movement struct {
	noQuantizer
	passes bool
	eval   constantFolder
}

func (m movement) static(*index, *onnxpb.NodeProto) staticRole {
	if m.passes {
		return staticPassThrough
	}
	return staticNone
}

func (m movement) foldConstant() constantFolder { return m.eval }

func foldIdentity(_ *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error) { return in[0], nil }

// leftToRuntime folds nothing: rare on weights, left to ONNX Runtime.
func leftToRuntime(*onnxpb.NodeProto, []*onnx.Tensor) (*onnx.Tensor, error) { return nil, nil }

func foldReshape(n *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	if len(in) < 2 || in[1] == nil {
		return nil, nil
	}
	shape, ok := in[1].Data.([]int64)
	if !ok {
		return nil, nil
	}
	out, err := onnx.ReshapeDims(x.Dims, shape, onnx.IntAttr(n, "allowzero", 0) != 0)
	if err != nil {
		return nil, err
	}
	return &onnx.Tensor{DType: x.DType, Dims: out, Data: x.Data}, nil
}

func foldFlatten(n *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	dims := x.Dims
	axis := int(onnx.IntAttr(n, "axis", 1))
	if axis < 0 {
		axis += len(dims)
	}
	outer := onnx.NumElements(dims[:axis])
	return &onnx.Tensor{DType: x.DType, Dims: []int64{int64(outer), int64(x.Len() / max(outer, 1))}, Data: x.Data}, nil
}
