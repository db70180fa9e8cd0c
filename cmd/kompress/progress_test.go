package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner"
)

// Off a terminal, each phase prints a line and its progress at most once
// per 10%: the first event of a phase included, and a stage that reports
// more done than total neither breaks the line nor claims over 100%.
func TestProgressPlainLines(t *testing.T) {
	ev := func(done, total int64) runner.Event {
		return runner.Event{Stage: "int8", Index: 0, Of: 2, Phase: runner.PhaseEvaluate, Done: done, Total: total, Unit: "samples"}
	}
	phase := runner.Event{Stage: "int8", Index: 0, Of: 2, Phase: runner.PhaseEvaluate, Message: "measuring"}
	var out bytes.Buffer
	p := newProgressBar(&out)
	for _, e := range []runner.Event{phase, ev(1, 200), ev(10, 200), ev(20, 200), ev(25, 200), ev(200, 200), phase, ev(5, 10), ev(12, 10)} {
		p.event(e)
	}
	want := []string{
		"  [1/2 int8] evaluate: measuring",
		"  [1/2 int8]   0% 1/200 samples",
		"  [1/2 int8]  10% 20/200 samples",
		"  [1/2 int8] 100% 200/200 samples",
		"  [1/2 int8] evaluate: measuring",
		"  [1/2 int8]  50% 5/10 samples",
		"  [1/2 int8] 100% 12/10 samples",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")); diff != "" {
		t.Errorf("progress lines (-want +got):\n%s", diff)
	}
	if got := bar(percent(ev(30, 10)), 10); got != "[==========]" {
		t.Errorf("bar at 300%% = %q, want a full bar", got)
	}
}
