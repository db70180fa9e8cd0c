package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/pipeline"
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
		exit int
	}{
		{"nil", nil, KindFailure, pipeline.ExitOK},
		{"missing file", fmt.Errorf("open: %w", fs.ErrNotExist), KindNotFound, pipeline.ExitNotFound},
		{"unreadable file", fmt.Errorf("open: %w", fs.ErrPermission), KindDenied, pipeline.ExitDenied},
		{"404", statusError(404), KindNotFound, pipeline.ExitNotFound},
		{"403", statusError(403), KindDenied, pipeline.ExitDenied},
		{"401", statusError(401), KindDenied, pipeline.ExitDenied},
		{"400", statusError(400), KindInvalid, pipeline.ExitBadInput},
		{"429", statusError(429), KindTransient, pipeline.ExitFailure},
		{"503", statusError(503), KindTransient, pipeline.ExitFailure},
		{"500", statusError(500), KindTransient, pipeline.ExitFailure},
		{"no response", fmt.Errorf("send: %w", errors.Join(statusError(0), syscall.ECONNREFUSED)), KindTransient, pipeline.ExitFailure},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), KindTransient, pipeline.ExitFailure},
		{"cancelled", context.Canceled, KindFailure, pipeline.ExitFailure},
		{"unknown", errors.New("something odd"), KindFailure, pipeline.ExitFailure},
		{"digest", &Error{Kind: KindDigestMismatch}, KindDigestMismatch, pipeline.ExitBadInput},
		{"bad uri", &Error{Kind: KindInvalid}, KindInvalid, pipeline.ExitBadInput},
		{"exists", &Error{Kind: KindExists}, KindExists, pipeline.ExitFailure},
		{"wrapped", fmt.Errorf("stage: %w", &Error{Kind: KindNotFound}), KindNotFound, pipeline.ExitNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := struct {
				Kind Kind
				Exit int
			}{KindOf(tt.err), ExitCode(tt.err)}
			want := struct {
				Kind Kind
				Exit int
			}{tt.kind, tt.exit}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
