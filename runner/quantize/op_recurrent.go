package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// recurrentQuantizer is LSTM, GRU and RNN, whose weights W [directions,
// gates*hidden, input] and R [directions, gates*hidden, hidden] are
// quantized per output channel (axis 1, one scale per gate unit):
//
//   - dynamic: an LSTM whose W and R are both quantized, symmetric, with
//     the default layout becomes com.microsoft DynamicQuantizeLSTM, as
//     onnxruntime's quantizer (operators/lstm.py) writes it: int8 W and R
//     transposed to [directions, input or hidden, 4*hidden], scales and
//     zero points [directions, 4*hidden], its input quantized at run time
//     by the kernel. ONNX Runtime has no integer GRU or RNN: their
//     weights, and an LSTM's otherwise, are stored as int8 and read
//     through DequantizeLinear; they compute in float.
//   - static: weights int8 through DequantizeLinear, computed in float
//     (QDQ has no recurrent kernel); the Conv, MatMul and Gemm around
//     them run on integers.
//   - weight-only: blocks along the features each gate reads (axis 2).
//     MatMulNBits is a matrix product: no form.
type recurrentQuantizer struct{ noQuantizer }

func (recurrentQuantizer) quantizesWeight() bool { return true }

func (recurrentQuantizer) weightAxis(_ *index, _ *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	out, _, ok := l.WeightAxes(len(c.dims()))
	if !ok || c.dims()[0] != int64(l.Directions) {
		return 0, ReasonShape
	}
	return out, ""
}

func (recurrentQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticWeight }

func (recurrentQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) { return d.recurrent(s) }

func (recurrentQuantizer) blocked() bool { return true }

func (recurrentQuantizer) nbits(*editor, *index, weightSlot) (nbitsForm, Reason, string, error) {
	return nbitsForm{}, ReasonUnsupportedOp, "format matmulnbits covers MatMul and Gemm; use format qdq for recurrent layers", nil
}
