// Package quantize holds the Quantize stage: integer and float16 rewrites of
// an ONNX model, and the arithmetic under them.
//
// Quantize (or QuantizeInPlace) applies Options:
//
//   - dynamic: int8 weights, activations quantized at run time
//     (DynamicQuantizeLinear + MatMulInteger/ConvInteger, which ONNX Runtime
//     fuses into DynamicQuantizeMatMul for matrix products);
//   - static: the QDQ form ONNX Runtime fuses into QLinearConv,
//     QLinearMatMul and QGemm, with activation ranges calibrated (minmax,
//     percentile, entropy) on the job's data, per-channel int8 weights and
//     int32 biases; nodes whose 8-bit activations cost the most fidelity
//     are computed in float until the output cosine on held calibration
//     batches reaches 0.99 (or what int8 weights alone allow);
//   - weightOnly: int4 or int8 weights in blocks along the input dimension,
//     as DequantizeLinear with block_size (opset 21) or com.microsoft
//     MatMulNBits;
//   - fp16: float16 weights and computation, float32 kept where
//     onnxruntime's float16 converter keeps it.
//
// Before any method, constant subgraphs that only rearrange a weight
// (Reshape, Transpose, ...) are folded, and Add and BatchNormalization after
// a Conv are folded into its weights and bias, as onnxruntime's
// quantization pre-processing does. Weights are found wherever they live
// (initializers, sparse initializers, Constant nodes, subgraphs); zeros stay
// exactly zero (pruning masks survive); every float tensor left behind is
// listed in the Report with the reason.
//
// What each method does with an operator is its entry in the operator
// registry (registry.go, after onnxruntime's registry.py): Conv, MatMul and
// Gemm run on integer kernels, ConvTranspose reads an int8 weight in float,
// MaxPool, Reshape, Flatten, Transpose, Squeeze and Unsqueeze pass
// quantized values through, Relu and Clip at 0 fold into the quantization
// before them; each entry also gives its dynamic form, its weight-only
// forms and what it folds (a following BatchNormalization or Add, constant
// inputs). Where an operator keeps its weight and which axes are its
// channels is runner/onnx's operator table. Operators without an entry
// (LSTM, GRU, Gather, contrib operators, ...) stay in float, reported with
// ReasonUnsupportedOp; adding one is one file with its quantizer and one
// register line.
//
// The arithmetic follows ONNX Runtime's Python quantization tool
// (quant_utils.compute_scale_zp and calibrate.HistogramCollector), so a
// model quantized here and one quantized there with the same settings carry
// the same parameters.
package quantize
