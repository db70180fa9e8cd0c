package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/storage"
)

// Error is a stage failure with the exit code that tells the controller
// whether a retry can help, and the reason status shows.
type Error struct {
	Code   int
	Reason string
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// BadInput marks err as a problem with the model, the dataset or the stage
// spec: the same task would fail again, so it is not retried.
func BadInput(err error) error {
	return &Error{Code: pipeline.ExitBadInput, Reason: "BadInput", Err: err}
}

// BadInputf is BadInput with a formatted message.
func BadInputf(format string, args ...any) error { return BadInput(fmt.Errorf(format, args...)) }

// BadTask marks err as a malformed task (ExitUsage).
func BadTask(err error) error {
	return &Error{Code: pipeline.ExitUsage, Reason: "InvalidTask", Err: err}
}

// ExitCode is the process exit code for err: the code an *Error carries,
// else bad input for anything wrapping fault.ErrBadInput (every algorithm
// package's sentinels do), else the code of a storage failure's kind, else
// a transient failure the controller retries.
func ExitCode(err error) int {
	if err == nil {
		return pipeline.ExitOK
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if fault.IsBadInput(err) {
		return pipeline.ExitBadInput
	}
	if _, ok := errors.AsType[*storage.Error](err); ok {
		return storageExitCode(storage.KindOf(err))
	}
	return pipeline.ExitFailure
}

// storageExitCode gives permanent storage failures the codes the
// controller does not retry.
func storageExitCode(k storage.Kind) int {
	switch k {
	case storage.KindNotFound:
		return pipeline.ExitNotFound
	case storage.KindDenied:
		return pipeline.ExitDenied
	case storage.KindInvalid, storage.KindDigestMismatch:
		return pipeline.ExitBadInput
	}
	return pipeline.ExitFailure
}

// Reason is the CamelCase reason for err in results and status.
func Reason(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Reason != "" {
		return e.Reason
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "DeadlineExceeded"
	}
	return pipeline.ExitReason(int32(ExitCode(err)))
}
