// Package onnx loads, inspects, edits and saves ONNX models.
//
// A Model wraps the protobuf (package onnxpb, generated from our own copy of
// the ONNX schema) and keeps what the protobuf alone does not know: where the
// model came from, for error messages and external data. Tensors are held as
// Tensor values (a data type, dims and a typed Go slice) so algorithms never
// decode raw bytes themselves. Weights (initializers, Constant nodes,
// subgraph weights) are reached through one API, Weights, wherever they live.
//
// The operator table (LayerOf) answers, for every operator that multiplies
// its input by a weight (Conv, ConvTranspose, Gemm, MatMul and their
// integer forms, LSTM/GRU/RNN, Gather of an embedding table, com.microsoft
// Attention and MatMulNBits), which input is the data, the weight and the
// bias, and (WeightAxes, DataAxis, Channels) which axes hold the output and
// input channels, with groups, Gemm's transA/transB, batched MatMul weights
// and recurrent directions and gates accounted for. Quantization, pruning,
// distillation and evaluation take these answers from it; each decides for
// itself which kinds of layer it handles.
//
// Small helpers every package shares live here too: Label names a node for
// reports, IsDefaultDomain tells ONNX's own operators, ReshapeDims resolves
// a Reshape's target shape.
//
// Nothing here needs cgo; running models is package runner/ort.
package onnx
