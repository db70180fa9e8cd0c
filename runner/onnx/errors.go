package onnx

import (
	"errors"
	"fmt"

	"github.com/kompress/kompress/runner/fault"
)

// ErrInvalid is wrapped by every error that reports a malformed model or
// tensor: bytes that are not an ONNX model, negative or oversized dims,
// data that does not match its dims, sparse tensors with missing parts or
// indices out of bounds. It wraps fault.ErrBadInput, so a stage that meets
// such a tensor anywhere (Load, pruning reading a weight, quantization's
// constant folding) fails as bad input (exit 65) and is not retried.
var ErrInvalid = fault.New("invalid ONNX model")

// ErrExternalData is wrapped (with ErrInvalid) by Load's error for a model
// whose tensors live in external data files: a caller that takes models in
// one file only (a distillation teacher) says so in its own words.
var ErrExternalData = errors.New("tensor data in external files")

// externalError is Load's error for a tensor in an external file.
type externalError struct{ tensor, location string }

func (e externalError) Error() string {
	return fmt.Sprintf("model: tensor %q keeps its data in external file %q: load the model with LoadFile from the directory that holds both", e.tensor, e.location)
}
func (e externalError) Is(target error) bool { return target == ErrExternalData }

// invalidError marks an error as ErrInvalid without changing its message.
type invalidError struct{ err error }

func (e *invalidError) Error() string   { return e.err.Error() }
func (e *invalidError) Unwrap() []error { return []error{e.err, ErrInvalid} }

// invalid marks err as ErrInvalid; nil stays nil.
func invalid(err error) error {
	if err == nil || errors.Is(err, ErrInvalid) {
		return err
	}
	return &invalidError{err: err}
}

// invalidf is invalid(fmt.Errorf(format, args...)).
func invalidf(format string, args ...any) error { return invalid(fmt.Errorf(format, args...)) }
