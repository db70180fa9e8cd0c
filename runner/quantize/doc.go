// Package quantize holds the Quantize stage: integer and float16 rewrites of
// an ONNX model (dynamic, static QDQ with calibration, block-wise
// weight-only, fp16), and the arithmetic under them — scales and zero
// points, rounding and saturation as ONNX QuantizeLinear defines them,
// per-channel and block-wise layouts, MatMulNBits packing, and the
// activation-range collectors (minmax, percentile, entropy) that static
// quantization calibrates with.
//
// The arithmetic follows ONNX Runtime's Python quantization tool
// (quant_utils.compute_scale_zp and calibrate.HistogramCollector), so a
// model quantized here and one quantized there with the same settings carry
// the same parameters.
package quantize
