// Package dataset loads the .npz datasets that feed calibration, evaluation
// and distillation. Every array of the file is kept in its own element type
// (bool, integers, float16, float32, float64), in Arrays: one per model
// input, named by the input, for a model with several; x for a
// single-input model (X shares its values when they are float32; other
// types are read as float32 a sample or a batch at a time, without
// scaling: uint8 pixels stay 0..255, which is what mnist-8 expects); and
// an optional array y of integer class labels.
//
// A dataset is user input: the reader trusts no size it declares. The
// .npy headers are parsed strictly by this package (header.go); each
// zip entry's sizes are checked against the file, each array's shape
// against its entry and against Limits (bytes of all arrays together,
// samples along each array's first dimension) before anything is
// allocated for it; the data is decoded into a slice of its own type
// through a small buffer. Every error wraps fault.ErrBadInput and names
// the file, the entry and what was expected. docs/reliability.md lists
// the crafted files of issue 11 (datasettest) and what each gets.
//
// Matching arrays to a model's inputs (which hold samples, which are fed
// whole with every batch, conversions) is runner/feed's: Fit and FitShape
// check one array's shape against a model input; Batches and Take slice x
// without copying.
package dataset
