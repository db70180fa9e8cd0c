package runner

import (
	"fmt"
	"log/slog"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/panics"
)

// recovered turns a panic into a stage failure: reason InternalError, the
// panic's value and the line that raised it in the message, and the whole
// stack in the log. The same task would panic the same way again, so it
// is not retried (exit 65), but the reason says the fault is the
// runner's, to report, not the user's. A panic on a goroutine the runner
// started arrives as the *panics.Panic its panics.Group raised again on
// the waiting goroutine, and is reported with its own value and stack.
func recovered(p any, log *slog.Logger) error {
	pv := panics.Recovered(p)
	log.Error("stage panicked", "panic", fmt.Sprint(pv.Value), "stack", pv.Stack)
	return &Error{Code: pipeline.ExitBadInput, Reason: "InternalError",
		Err: fmt.Errorf("internal error (a bug in runner %s; please report it with the input that caused it): panic: %s", pipeline.Version, pv.Message())}
}
