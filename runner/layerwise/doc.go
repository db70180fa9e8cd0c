// Package layerwise runs the second-order layer-wise methods (SparseGPT
// pruning, GPTQ quantization) one block of a model at a time, as their
// papers do, instead of running the whole model once per wave of layers:
//
//  1. Cut finds where a main graph can be cut: the points where at most
//     one tensor a processed layer changes is alive (the residual stream
//     of a transformer between blocks and between a block's attention and
//     feed-forward halves). The tensors alive there that no layer changes
//     (an attention bias, positions, graph inputs read later) are carried
//     along as they are.
//  2. Walk.Run feeds each segment, extracted as a model of its own
//     (onnx.Model.Extract: its nodes and only the initializers they read),
//     the captured inputs of every calibration batch: for each wave of its
//     layers the caller's Process collects and processes them (writing
//     their new weights), then the processed segment is run once more to
//     give the next segment its inputs.
//
// Memory is bounded by one segment's session plus the calibration
// activations at one cut, and each segment runs (waves + 1) times, not the
// whole model once per wave. Sessions are opened through runner/feed.
//
// With NoPropagate every segment's inputs are captured from the original
// model before any layer changes: segments are then independent (what
// sharding by layers needs) at the cost of calibrating each layer on
// inputs its processed predecessors no longer produce.
package layerwise
