// Package dataset loads the .npz datasets that feed calibration, evaluation
// and distillation: an array x of inputs (uint8, float32 or float64, any
// rank, samples along the first dimension) and an optional array y of
// integer class labels. Inputs become float32 without scaling: uint8 pixels
// stay 0..255, which is what mnist-8 expects.
//
// Fit checks a dataset against a model input (name, element type, shape
// with dynamic dimensions); Batches and Take slice it without copying.
package dataset
