package runner

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// TestExecuteRecoversAPanic registers a stage type whose transform
// panics: Execute must return a typed failure naming the panic and where
// it happened, as the pod's termination message will carry it.
func TestExecuteRecoversAPanic(t *testing.T) {
	const typ = v1alpha1.StageTypeQuantize
	saved := stages[typ]
	stages[typ] = Stage{Describe: saved.Describe, Transform: func(context.Context, *StageInput) (*StageOutput, error) {
		var m map[string]int
		m["boom"]++ // assignment to entry in nil map
		return nil, nil
	}}
	defer func() { stages[typ] = saved }()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	res, err := Execute(context.Background(), firstTask(t, spec), Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if ExitCode(err) != pipeline.ExitBadInput || res.Reason != "InternalError" || res.Output != nil {
		t.Fatalf("exit %d, reason %q, output %v (err %v); want exit 65 InternalError and no output", ExitCode(err), res.Reason, res.Output, err)
	}
	for _, want := range []string{"panic: assignment to entry in nil map", "panic_test.go:", "please report it"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q does not say %q", res.Message, want)
		}
	}
	if _, terr := res.TerminationMessage(); terr != nil {
		t.Errorf("the failure does not fit a termination message: %v", terr)
	}
}
