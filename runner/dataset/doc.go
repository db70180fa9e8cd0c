// Package dataset loads the .npz datasets that feed calibration, evaluation
// and distillation. Every array of the file is kept in its own element type
// (bool, integers, float16, float32, float64), in Arrays: one per model
// input, named by the input, for a model with several; x for a
// single-input model, also read into X as float32 without scaling (uint8
// pixels stay 0..255, which is what mnist-8 expects); and an optional
// array y of integer class labels. Shapes are checked against the bytes of
// each entry before anything is allocated.
//
// Matching arrays to a model's inputs (which hold samples, which are fed
// whole with every batch, conversions) is runner/feed's: Fit and FitShape
// check one array's shape against a model input; Batches and Take slice x
// without copying.
package dataset
