package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/distill"
	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/prune/structured"
	"github.com/kompress/kompress/runner/quantize"
	"github.com/kompress/kompress/runner/storage"
)

func TestExitCodeAndReason(t *testing.T) {
	type out struct {
		Code   int
		Reason string
	}
	tests := []struct {
		name string
		err  error
		want out
	}{
		{"nil", nil, out{pipeline.ExitOK, "Succeeded"}},
		{"unclassified", io.ErrUnexpectedEOF, out{pipeline.ExitFailure, "StageFailed"}},
		{"deadline", fmt.Errorf("run: %w", context.DeadlineExceeded), out{pipeline.ExitFailure, "DeadlineExceeded"}},
		{"runner error", &Error{Code: pipeline.ExitNotFound, Reason: "OutputNotFound", Err: io.EOF}, out{pipeline.ExitNotFound, "OutputNotFound"}},
		{"bad task", BadTask(io.EOF), out{pipeline.ExitUsage, "InvalidTask"}},
		{"fault", fault.Badf("x"), out{pipeline.ExitBadInput, "BadInput"}},
		// Every algorithm sentinel is bad input without the stage
		// listing it.
		{"prune spec", fmt.Errorf("%w: sparsity", prune.ErrSpec), out{pipeline.ExitBadInput, "BadInput"}},
		{"prune nothing", prune.ErrNothingPrunable, out{pipeline.ExitBadInput, "BadInput"}},
		{"prune calibration", prune.ErrCalibration, out{pipeline.ExitBadInput, "BadInput"}},
		{"structured nothing", structured.ErrNothingPrunable, out{pipeline.ExitBadInput, "BadInput"}},
		{"quantize spec", quantize.ErrSpec, out{pipeline.ExitBadInput, "BadInput"}},
		{"quantize no weights", quantize.ErrNoWeights, out{pipeline.ExitBadInput, "BadInput"}},
		{"quantize unsupported", quantize.ErrUnsupported, out{pipeline.ExitBadInput, "BadInput"}},
		{"distill spec", distill.ErrSpec, out{pipeline.ExitBadInput, "BadInput"}},
		{"distill input", distill.ErrBadInput, out{pipeline.ExitBadInput, "BadInput"}},
		{"storage not found", fmt.Errorf("read: %w", &storage.Error{Kind: storage.KindNotFound}), out{pipeline.ExitNotFound, "InputNotFound"}},
		{"storage denied", &storage.Error{Kind: storage.KindDenied}, out{pipeline.ExitDenied, "AccessDenied"}},
		{"storage invalid", &storage.Error{Kind: storage.KindInvalid}, out{pipeline.ExitBadInput, "BadInput"}},
		{"storage digest", &storage.Error{Kind: storage.KindDigestMismatch}, out{pipeline.ExitBadInput, "BadInput"}},
		{"storage transient", &storage.Error{Kind: storage.KindTransient}, out{pipeline.ExitFailure, "StageFailed"}},
		{"storage exists", &storage.Error{Kind: storage.KindExists}, out{pipeline.ExitFailure, "StageFailed"}},
		{"storage unknown", &storage.Error{Kind: storage.KindFailure, Err: errors.New("odd")}, out{pipeline.ExitFailure, "StageFailed"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := out{ExitCode(tt.err), Reason(tt.err)}
			if tt.err == nil {
				got.Reason = pipeline.ExitReason(int32(got.Code))
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}
