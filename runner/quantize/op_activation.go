package quantize

import "github.com/kompress/kompress/runner/onnx/onnxpb"

// reluQuantizer is Relu: right after a quantized node, static quantization
// removes it and folds its range into the output's quantization, as
// onnxruntime's QDQ quantizer does.
type reluQuantizer struct{ noQuantizer }

func (reluQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticActivation }

// clipQuantizer is Clip, folded like Relu when its lower bound is a
// constant 0.
type clipQuantizer struct{ noQuantizer }

func (clipQuantizer) static(ix *index, n *onnxpb.NodeProto) staticRole {
	if clipMin(ix, n) == 0 {
		return staticActivation
	}
	return staticNone
}
