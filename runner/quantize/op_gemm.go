package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// gemmQuantizer is Gemm with a constant 2-D B: static QDQ that ONNX
// Runtime runs as QGemm, whose output stays float unless a quantized
// reader takes it (logits are not quantized); dynamic MatMulInteger on B
// as [K, N], alpha folded into the scale and beta*C added after (not with
// transA); weight-only blocks along K, or MatMulNBits with alpha in the
// scales and a constant C [N] as its bias.
type gemmQuantizer struct{ noQuantizer }

func (gemmQuantizer) quantizesWeight() bool { return true }

func (gemmQuantizer) weightAxis(ix *index, n *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	return matrixAxis(ix, n, l, c)
}

func (gemmQuantizer) static(*index, *onnxpb.NodeProto) staticRole {
	return staticIntegerFloatOutput
}

func (gemmQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) { return d.gemm(s) }

func (gemmQuantizer) blocked() bool { return true }

func (gemmQuantizer) nbits(e *editor, ix *index, s weightSlot) (nbitsForm, Reason, string, error) {
	n, l := s.node, s.layer
	if l.TransA {
		return nbitsForm{}, ReasonUnsupportedOp, "MatMulNBits has no transA", nil
	}
	f := nbitsForm{alpha: onnx.FloatAttr(n, "alpha", 1)}
	if input(n, l.Bias) != "" {
		bias, ok, err := nbitsBias(e, ix, s.graph, n, input(n, l.Bias), onnx.FloatAttr(n, "beta", 1))
		if err != nil {
			return nbitsForm{}, "", "", err
		}
		if !ok {
			return nbitsForm{}, ReasonShape, "MatMulNBits takes a constant bias of shape [N] only", nil
		}
		f.bias = bias
	}
	return f, "", "", nil
}
