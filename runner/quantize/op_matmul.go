package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// matMulQuantizer is MatMul with a constant 2-D B [K, N]: static QDQ that
// ONNX Runtime runs as QLinearMatMul; dynamic MatMulInteger (fused into
// DynamicQuantizeMatMul); weight-only blocks along K, or com.microsoft
// MatMulNBits. With an Add of a constant [N] after it and a 2-D input it
// becomes a Gemm first.
type matMulQuantizer struct{ noQuantizer }

func (matMulQuantizer) quantizesWeight() bool { return true }

func (matMulQuantizer) weightAxis(ix *index, n *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	return matrixAxis(ix, n, l, c)
}

func (matMulQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticInteger }

func (matMulQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) { return true, d.matMul(s) }

func (matMulQuantizer) blocked() bool { return true }

func (matMulQuantizer) nbits(*editor, *index, weightSlot) (nbitsForm, Reason, string, error) {
	return nbitsForm{alpha: 1}, "", "", nil
}

func (matMulQuantizer) fold() foldRole { return foldGemm }

// matrixAxis is the output-channel axis of a matrix product's weight,
// which must be 2-D and multiply a computed input (a product of two
// constants is left to constant folding).
func matrixAxis(ix *index, n *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	out, _, ok := l.WeightAxes(len(c.dims()))
	if !ok || len(c.dims()) != 2 || ix.consts[input(n, l.Data)] != nil {
		return 0, ReasonShape
	}
	return out, ""
}

// input returns n's input i, "" when absent.
func input(n *onnxpb.NodeProto, i int) string {
	if i >= 0 && i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}
