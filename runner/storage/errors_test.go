package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"
)

// statusError has the shape of the AWS SDK's HTTP response errors.
type statusError int

func (e statusError) Error() string       { return fmt.Sprintf("status %d", int(e)) }
func (e statusError) HTTPStatusCode() int { return int(e) }

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind Kind
	}{
		{"nil", nil, KindFailure},
		{"missing file", fmt.Errorf("open: %w", fs.ErrNotExist), KindNotFound},
		{"unreadable file", fmt.Errorf("open: %w", fs.ErrPermission), KindDenied},
		{"404", statusError(404), KindNotFound},
		{"403", statusError(403), KindDenied},
		{"401", statusError(401), KindDenied},
		{"400", statusError(400), KindInvalid},
		{"429", statusError(429), KindTransient},
		{"503", statusError(503), KindTransient},
		{"500", statusError(500), KindTransient},
		{"no response", fmt.Errorf("send: %w", errors.Join(statusError(0), syscall.ECONNREFUSED)), KindTransient},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), KindTransient},
		{"cancelled", context.Canceled, KindFailure},
		{"unknown", errors.New("something odd"), KindFailure},
		{"digest", &Error{Kind: KindDigestMismatch}, KindDigestMismatch},
		{"bad uri", &Error{Kind: KindInvalid}, KindInvalid},
		{"exists", &Error{Kind: KindExists}, KindExists},
		{"wrapped", fmt.Errorf("stage: %w", &Error{Kind: KindNotFound}), KindNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := KindOf(tt.err); got != tt.kind {
				t.Errorf("KindOf = %v, want %v", got, tt.kind)
			}
		})
	}
}
