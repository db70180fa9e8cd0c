// Package onnx loads, inspects, edits and saves ONNX models.
//
// A Model wraps the protobuf (package onnxpb, generated from our own copy of
// the ONNX schema) and keeps what the protobuf alone does not know: where the
// model came from, for error messages and external data. Tensors are held as
// Tensor values (a data type, dims and a typed Go slice) so algorithms never
// decode raw bytes themselves. Weights (initializers, Constant nodes,
// subgraph weights) are reached through one API, Weights, wherever they live.
//
// Nothing here needs cgo; running models is package runner/ort.
package onnx
