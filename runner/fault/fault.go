// Package fault holds the one error every runner package wraps when a
// failure is the input's fault: the model, the dataset or the stage's
// options. The same task would fail the same way again, so the runner
// exits 65 and the controller does not retry it. An error that does not
// wrap ErrBadInput is treated as transient and retried.
//
// Algorithm packages declare their own sentinels with New, so callers can
// still tell the classes apart (errors.Is(err, prune.ErrSpec)) while a new
// sentinel can never silently become a retryable failure.
package fault

import (
	"errors"
	"fmt"
)

// ErrBadInput is wrapped by every error that retrying cannot fix.
var ErrBadInput = errors.New("bad input")

// New returns a sentinel for one class of bad input: its message is text,
// and errors.Is reports it (and every error wrapping it) as ErrBadInput.
func New(text string) error { return &class{text: text} }

type class struct{ text string }

func (c *class) Error() string { return c.text }
func (c *class) Unwrap() error { return ErrBadInput }

// BadInput marks err as bad input without changing its message. It
// returns nil for nil.
func BadInput(err error) error {
	if err == nil || errors.Is(err, ErrBadInput) {
		return err
	}
	return &badInput{err: err}
}

// Badf is BadInput(fmt.Errorf(format, args...)).
func Badf(format string, args ...any) error { return BadInput(fmt.Errorf(format, args...)) }

type badInput struct{ err error }

func (e *badInput) Error() string   { return e.err.Error() }
func (e *badInput) Unwrap() []error { return []error{e.err, ErrBadInput} }

// IsBadInput reports whether err wraps ErrBadInput.
func IsBadInput(err error) bool { return errors.Is(err, ErrBadInput) }
