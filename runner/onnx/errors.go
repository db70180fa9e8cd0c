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
