package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// convQuantizer is Conv: static QDQ that ONNX Runtime runs as QLinearConv
// (int8 weight per output channel, int32 bias); dynamic ConvInteger;
// weight-only blocks of the kernel seen as the matrix [M, C/group*k...]
// (MatMulNBits is a matrix product: no form). An Add or a
// BatchNormalization after it folds into its weight and bias.
type convQuantizer struct{ noQuantizer }

func (convQuantizer) quantizesWeight() bool { return true }

func (convQuantizer) weightAxis(_ *index, _ *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	return kernelAxis(l, c)
}

func (convQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticInteger }

func (convQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) { return true, d.conv(s) }

func (convQuantizer) blocked() bool { return true }

func (convQuantizer) fold() foldRole { return foldChannels }

// kernelAxis is a convolution weight's output-channel axis; its rank must
// be at least 3.
func kernelAxis(l onnx.Layer, c *constant) (int, Reason) {
	out, _, ok := l.WeightAxes(len(c.dims()))
	if !ok {
		return 0, ReasonShape
	}
	return out, ""
}
