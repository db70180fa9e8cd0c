package quantize

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// IntegerKernels are the ONNX Runtime operators that compute on quantized
// integers: seeing them in the optimized graph shows the quantized form
// was fused as intended.
var IntegerKernels = []string{
	"QLinearConv", "QLinearMatMul", "QGemm", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
	"ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul", "QLinearConcat",
	"QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSigmoid", "QLinearLeakyRelu",
	"MatMulNBits",
}

// Kernels returns the operator counts of the graph ONNX Runtime runs for a
// serialized model after all its graph optimizations (QDQ fusions
// included), keyed by op type (contrib operators without their domain).
func Kernels(model []byte) (map[string]int, error) {
	b, err := ort.OptimizedModel("quantized model", model, ort.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("ONNX Runtime's optimized model: %w", err)
	}
	counts := map[string]int{}
	for _, n := range m.GetGraph().GetNode() {
		counts[n.GetOpType()]++
	}
	return counts, nil
}
