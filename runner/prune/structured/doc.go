// Package structured removes whole channels from an ONNX model: Conv and
// ConvTranspose output channels (filters), Gemm and MatMul output units.
// Unlike unstructured pruning, which leaves zeros in tensors of the same
// size, the model it writes is physically smaller and does fewer
// multiply-accumulates.
//
// Removing a channel touches every tensor that carries it: the layer's own
// weight and bias, the BatchNormalization and per-channel constants after it,
// the input dimension of the next Conv, Gemm or MatMul (through Flatten and
// Reshape, where each channel is a block of rows), the group count of a
// depthwise convolution, Concat offsets, and every branch of an Add or Mul
// whose channels must stay aligned. The package builds that dependency graph
// once over the ONNX graph, the way Torch-Pruning's DepGraph does for PyTorch
// modules, but at the granularity of single channels: every channel a layer
// produces gets an id, each tensor records which ids lie along its channel
// axis (its layout), and a union-find joins the ids that must go together
// (the two inputs of a residual Add, say). A class of joined ids is the unit
// that is scored and removed, everywhere at once. Classes that cannot go —
// they reach a graph output, an operator this package does not rewrite, a
// Reshape whose shape is computed at run time — are pinned, and the reason
// is reported. Each operator's rule (rules.go) holds its coupling logic;
// which input of a layer is the weight or the bias and which weight axes
// hold its output and input channels comes from runner/onnx's operator
// table.
//
// Three criteria score channels: the L1 or L2 norm of the filter (Li et
// al., "Pruning Filters for Efficient ConvNets"); the entropy of the
// channel's activations over calibration data (Luo & Wu, "An Entropy-based
// Pruning Method for CNN Compression"); and reconstruction, the share of
// the output variance of the layers that read the channel which it
// carries, measured on calibration data (‖W_c‖²·Var(x_c) over the layer's
// total: the next layer's reconstruction error, as in ThiNet and He et
// al.'s channel pruning, in closed form). A class's score is the sum of
// its channels'. Each group of coupled layers loses the same fraction of
// its classes (ScopeLayer), or the same total is spread by score over all
// groups (ScopeGlobal: norms and entropies divided by their group's mean,
// reconstruction shares as they are) or by measured sensitivity
// (ScopeSensitivity: Li et al.'s per-layer sensitivity analysis, run on
// the model's real outputs).
//
// Which of these works depends on the model. Filter norms say nothing
// about how much a channel matters downstream: on ppocr-det (20% of the
// channels, image calibration) every group losing 20% by L1 keeps an
// output cosine of 0.02-0.16 to the source, the global scope by L1 about
// 0.0; reconstruction shares ranked globally keep 0.996-0.999 in seconds,
// the sensitivity analysis 0.98 in minutes. On mnist-8 (25%) the drop in
// accuracy is 2.9 points (layer, L1), 2.7 (layer, reconstruction), 1.0
// (global, reconstruction; and sensitivity), 6.6 to 9.1 (layer, entropy,
// which is meant to be followed by fine-tuning).
//
// A removed channel usually held an offset (a bias, a BatchNormalization
// shift after an activation); the layer that read it gets that offset's
// contribution folded into its bias (bias correction), measured on the
// calibration data.
//
// Tensor shapes come from one run of the model in ONNX Runtime, and the
// pruned model is run again before it is returned: a model ONNX Runtime
// cannot run is an error, never a result.
package structured
