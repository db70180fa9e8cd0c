package runner

import (
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/kompress/kompress/pipeline"
)

// recovered turns a panic into a stage failure: reason InternalError, the
// panic's value and the line that raised it in the message, and the whole
// stack in the log. The same task would panic the same way again, so it
// is not retried (exit 65), but the reason says the fault is the
// runner's, to report, not the user's.
func recovered(p any, log *slog.Logger) error {
	stack := string(debug.Stack())
	log.Error("stage panicked", "panic", fmt.Sprint(p), "stack", stack)
	msg := firstLine(fmt.Sprint(p))
	if at := panicSite(stack); at != "" {
		msg += " at " + at
	}
	return &Error{Code: pipeline.ExitBadInput, Reason: "InternalError",
		Err: fmt.Errorf("internal error (a bug in runner %s; please report it with the input that caused it): panic: %s", pipeline.Version, msg)}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// panicSite is the file:line of the frame that panicked: the first frame
// below runtime.gopanic in a debug.Stack taken in the deferred recover.
func panicSite(stack string) string {
	lines := strings.Split(stack, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && i+3 < len(lines) {
			site := strings.TrimSpace(lines[i+3])
			site, _, _ = strings.Cut(site, " +0x")
			return site
		}
	}
	return ""
}
