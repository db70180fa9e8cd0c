// Package prune holds the Prune stage. Prune is its one entry point: it
// runs the method Options name on an ONNX model. (The runner translates a
// stage's prune spec into Options: prune.keep, the decimal strings, the
// CRD's defaults.)
//
// This package does the unstructured methods, which zero weights in place
// and keep every tensor's shape:
//
//   - magnitude: the weights of smallest absolute value go, either the same
//     fraction of every layer (scope layer) or the same total over all
//     layers, each layer's share set by LAMP scores (scope global, the
//     default): w² over the squared norm of the layer's weights at least as
//     large (Lee et al., 2021), which a layer's overall scale does not
//     change, so layers whose weights are small as a whole (a
//     normalization after them scales them up) are not emptied.
//   - nm: N of every M consecutive weights along the input dimension stay
//     (2:4 by default), the pattern sparse tensor cores run.
//   - hessian: SparseGPT (Frantar & Alistarh, 2023), an Optimal Brain
//     Surgeon method: per layer, H = 2·XᵀX from the layer's inputs on
//     calibration data; weights go by w²/[H⁻¹]ᵢᵢ, and the remaining weights
//     of each row are updated to make up for them. Unstructured or N:M.
//
// The structured methods (structured, entropy), which remove whole channels
// and rewrite the graph, are in package runner/prune/structured; Prune
// dispatches to it. Their Report says NeedsRecovery, with a warning, when
// the pruned model should be fine-tuned (a Distill stage) before use: its
// outputs keep a cosine below 0.99 to the source's, or the method is
// entropy, which Luo & Wu follow with fine-tuning.
//
// Prunable weights are the weight inputs of Conv, ConvTranspose, Gemm and
// MatMul, wherever they are stored (initializers, Constant nodes,
// subgraphs), also when they reach the operator through Identity, Reshape
// or Flatten. Which input is the weight, which the bias and which axes
// hold the output and input channels is runner/onnx's operator table
// (LayerOf); the kinds of layer handled are those with an entry in
// layouts, which says how the kind reads its weight as matrices (recurrent
// layers have none yet and are left dense). Everything else — biases, normalization parameters, weights
// shared with other operators, excluded nodes, tensors smaller than
// MinParams — is left alone and listed in the Report with the reason.
//
// With Storage Sparse, pruned weights are written as ONNX sparse
// initializers where that is smaller, with compact (int8/int16/int32)
// indices, so the file really shrinks. Masks recovers the zero pattern of a
// pruned model's weights so that later stages can keep pruned weights at
// zero.
package prune
