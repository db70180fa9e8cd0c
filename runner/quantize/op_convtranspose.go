package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// convTransposeQuantizer is ConvTranspose, which has no integer kernel:
// static and dynamic store its weight as int8 per output channel (axis 1
// of [C, M/group, k...]) read through DequantizeLinear and compute in
// float; weight-only blocks run along the input channels (axis 0). An Add
// or a BatchNormalization after it folds into its weight and bias.
type convTransposeQuantizer struct{ noQuantizer }

func (convTransposeQuantizer) quantizesWeight() bool { return true }

func (convTransposeQuantizer) weightAxis(_ *index, _ *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	return kernelAxis(l, c)
}

func (convTransposeQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticWeight }

func (convTransposeQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) {
	return true, d.weightOnly(s)
}

func (convTransposeQuantizer) blocked() bool { return true }

func (convTransposeQuantizer) fold() foldRole { return foldChannels }
