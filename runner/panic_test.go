package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/feed"
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

// TestExecuteRecoversAWorkerPanic: a panic on a worker goroutine (here
// feed.Parallel's, as evaluation and distillation run them) must not
// crash the process: Execute returns the same typed failure as for a
// panic of its own goroutine, naming the panic's first line and the
// worker's line, and the process lives on to run the next stage.
func TestExecuteRecoversAWorkerPanic(t *testing.T) {
	const typ = v1alpha1.StageTypeQuantize
	saved := stages[typ]
	stages[typ] = Stage{Describe: saved.Describe, Transform: func(ctx context.Context, _ *StageInput) (*StageOutput, error) {
		err := feed.Parallel(ctx, 64, 4, func(i int) (int, error) {
			if i == 37 {
				panic(fmt.Sprintf("worker %d broke\nwith a second line", i))
			}
			return i, nil
		}, func(int, int) error { return nil })
		return nil, err
	}}
	defer func() { stages[typ] = saved }()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	quiet := Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan struct{})
	var res pipeline.Result
	var err error
	go func() { // a deadlock must fail the test, not hang it
		defer close(done)
		res, err = Execute(context.Background(), firstTask(t, spec), quiet)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Execute did not return: the panicking worker left the others waiting")
	}
	if ExitCode(err) != pipeline.ExitBadInput || res.Reason != "InternalError" || res.Output != nil {
		t.Fatalf("exit %d, reason %q, output %v (err %v); want exit 65 InternalError and no output", ExitCode(err), res.Reason, res.Output, err)
	}
	for _, want := range []string{"panic: worker 37 broke at ", "panic_test.go:", "please report it"} {
		if !strings.Contains(res.Message, want) {
			t.Errorf("message %q does not say %q", res.Message, want)
		}
	}
	if strings.Contains(res.Message, "second line") {
		t.Errorf("message %q has more than the panic's first line", res.Message)
	}
	if _, terr := res.TerminationMessage(); terr != nil {
		t.Errorf("the failure does not fit a termination message: %v", terr)
	}
	// The process lives on: the next stage runs.
	stages[typ] = saved
	if _, err := Execute(context.Background(), firstTask(t, spec), quiet); ExitCode(err) == pipeline.ExitBadInput && Reason(err) == "InternalError" {
		t.Errorf("the next stage failed too: %v", err)
	}
}
