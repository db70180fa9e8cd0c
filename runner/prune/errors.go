package prune

import "github.com/kompress/kompress/runner/fault"

// Errors Prune returns wrapped, for the caller to tell bad input (the same
// job would fail again) from a failure worth retrying.
var (
	// ErrSpec: the options cannot be applied (sparsity out of range, N >= M,
	// an option the method does not take).
	ErrSpec = fault.New("invalid prune spec")
	// ErrNothingPrunable: the model has no weight the method can prune.
	ErrNothingPrunable = fault.New("nothing to prune")
	// ErrCalibration: the calibration data is missing, empty or does not
	// fit the model's inputs.
	ErrCalibration = fault.New("unusable calibration data")
)
