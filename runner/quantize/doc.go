// Package quantize holds the Quantize stage: integer and float16 rewrites of
// an ONNX model, and the arithmetic under them.
//
// Quantize (or QuantizeInPlace) applies a v1alpha1.QuantizeSpec:
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
// The arithmetic follows ONNX Runtime's Python quantization tool
// (quant_utils.compute_scale_zp and calibrate.HistogramCollector), so a
// model quantized here and one quantized there with the same settings carry
// the same parameters.
package quantize
