// Package feed owns how data reaches a model: every stage and the
// evaluator feed models through it, and no other package outside
// runner/ort opens ONNX Runtime sessions.
//
//   - Which inputs a model takes: Inputs lists the graph inputs a caller
//     feeds (not the dense or sparse initializers old models also list),
//     with their element type and dims.
//   - Data for every input, by name: FromDataset matches a dataset file to
//     a model's inputs. A single-input model is fed x (or the array named
//     by its input); a model with several inputs takes one array per
//     input, named by the input. An array holds samples along its first
//     dimension, or is fed whole with every batch (a sample-rate scalar, a
//     state tensor such as [2,1,128]); optional labels (y) go with the
//     samples. Values keep the element type they were stored in and are
//     converted to each input's type when fed (a float16 model takes
//     float16). Synthesize makes deterministic data when there is no
//     dataset, shaped by a Spec per input (Shape, Value, Range).
//   - Batching: BatchSize is a preferred size, or the batch the model
//     fixes on dimension 0 (mnist-8 takes exactly 1), optionally capped
//     by input bytes per batch; Plan cuts the samples into Spans in
//     order, a last one short of a fixed batch padded (Pad, evaluation)
//     or dropped (Drop, calibration). Data.Batches is the Calibration
//     iterator static quantization and hessian pruning read; Collect
//     regroups and checks batches held for several passes.
//   - Running: Open loads a model with named intermediate tensors exposed
//     as extra outputs; Session.Each runs it over batches in order, and
//     Parallel runs batches on several goroutines (sessions with one
//     intra-op thread) while delivering results in order.
//
// Errors that are the data's or the model's fault (an array missing or of
// the wrong shape, values an input's type cannot hold, a spec naming no
// input) wrap fault.ErrBadInput: retrying cannot fix them.
//
// The algorithm packages (quantization's collectors, hessian's
// accumulators, entropy histograms, the evaluator's tallies) only do
// their own math on what a run returns.
package feed
