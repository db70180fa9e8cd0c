package runner

import (
	"fmt"
	"strings"

	"github.com/kompress/kompress/pipeline"
)

// Phase is a step of a stage.
type Phase string

const (
	PhaseCache     Phase = "cache"
	PhaseRead      Phase = "read"
	PhaseTransform Phase = "transform"
	PhaseEvaluate  Phase = "evaluate"
	PhaseWrite     Phase = "write"
)

// Event reports progress: a new phase (Message set), or progress within
// one (Done of Total Units; Total 0 when unknown).
type Event struct {
	Stage     string
	Index, Of int
	Phase     Phase
	Message   string
	Done      int64
	Total     int64
	Unit      string
}

// String renders an event as one log line.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%d/%d %s] %s", e.Index+1, e.Of, e.Stage, e.Phase)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Total > 0 {
		fmt.Fprintf(&b, " %d/%d %s (%.0f%%)", e.Done, e.Total, e.Unit, 100*float64(e.Done)/float64(e.Total))
	} else if e.Done > 0 {
		fmt.Fprintf(&b, " %d %s", e.Done, e.Unit)
	}
	return b.String()
}

// stepper returns a function announcing each phase of task.
func stepper(task pipeline.Task, progress func(Event)) func(Phase, string) {
	return func(p Phase, msg string) {
		progress(Event{Stage: task.Stage.Name, Index: task.Index, Of: task.Stages, Phase: p, Message: msg})
	}
}
