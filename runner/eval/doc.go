// Package eval measures a model the runner is about to publish, with ONNX
// Runtime, and refuses (returns an error) when ONNX Runtime cannot load or
// run it: a model Evaluate rejects is never published.
//
// What each figure means:
//
//   - bytes: the size of the serialized model.
//   - params: elements of the model's parameter tensors, wherever they
//     live (initializers, sparse initializers, Constant nodes, subgraphs):
//     every floating-point weight, and every integer weight a quantized
//     operator reads as a weight (DequantizeLinear's input, the weight of
//     ConvInteger, MatMulInteger, QLinearConv, QLinearMatMul, MatMulNBits
//     and QLinearConv's int32 bias). Quantization parameters (scales and
//     zero points, including the weight scale a dynamically quantized
//     graph multiplies by the DynamicQuantizeLinear scale) and integer
//     tensors such as Reshape shapes are not parameters. So quantizing a
//     model keeps params unchanged while bytes shrink. A MatMulNBits weight
//     counts K*N elements, not its packed bytes. (runner/onnx's Stats counts
//     float weights only, scales included, so its params change when a model
//     is quantized: the stage metrics use this package's count.)
//   - nonzeroParams: parameters whose value is not zero; for quantized
//     weights, codes that differ from their zero point (the ones that
//     dequantize to a non-zero value). sparsity = 1 - nonzero/params.
//   - macs: multiply-accumulates of one sample through Conv, ConvTranspose,
//     Gemm, MatMul and their integer forms (ConvInteger, QLinearConv,
//     MatMulInteger, QLinearMatMul, MatMulNBits: the kinds of layer of
//     runner/onnx's operator table, which places their data and weight
//     inputs; a DequantizeLinear feeding
//     a MatMul or Conv is counted as that MatMul or Conv), from the shapes
//     ONNX Runtime produces on a real run: output elements x (input
//     channels / group x kernel elements) for convolutions, input elements
//     x (output channels / group x kernel elements) for ConvTranspose,
//     output elements x K for matrix products. Nodes inside subgraphs
//     (If/Loop/Scan bodies) are not counted.
//   - accuracy: top-1 of the first output against the dataset's labels;
//     sourceAccuracy the same for the source model; accuracyDrop is
//     sourceAccuracy minus accuracy (negative when the model does better).
//   - fidelity, for every output against the source's on the same
//     inputs (Report.Outputs; Top1Agreement and Cosine repeat the first
//     output's), as the output's kind asks (OutputKind): class scores
//     [N, C] get one top-1 per sample, rank >= 3 outputs [N, T, C] one
//     per position on the last axis (top1Agreement is the share of
//     positions whose argmax is the source's); both get cosine, the mean
//     over samples of the cosine of the two outputs flattened per sample
//     (two all-zero outputs count 1, one all-zero output 0). Outputs of
//     one value per sample (a regression, a score) get neither, which
//     would be 1 by construction. Every output gets relativeError
//     (‖y−ŷ‖/‖y‖ per sample, averaged; over the samples taken together
//     for one-value outputs), maxAbsError and snrDb (runner/compare).
//   - latencyP50Ms, latencyP95Ms: wall time of Session.Run over timed runs
//     after warm-up runs, at latencyBatchSize.
//
// A model that ONNX Runtime cannot load, that fails to run, or whose
// outputs hold NaN is refused.
//
// The model is fed by runner/feed: a dataset gives one array per model
// input (x for a single-input model), and without one inputs are
// synthesized as Request.Inputs say by input name (shapes, constant
// values, ranges: the job's spec.evaluation.inputs), else uniform random
// values in [0, 1) from a fixed seed (integer inputs get zeros), dynamic
// dimensions DefaultDynamicDim, scalar inputs fed whole with every batch.
// Fidelity, MACs and latency are measured on them; accuracy is not.
package eval
