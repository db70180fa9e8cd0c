package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/kompress/kompress/runner"
)

// progressBar shows stage progress on a terminal: one line per phase and a
// redrawn bar while a transform reports how far it is. On anything else
// (a file, a pipe, CI) it prints plain lines, the bar at most every 10%.
type progressBar struct {
	mu       sync.Mutex
	w        io.Writer
	tty      bool
	drawn    bool // a bar is on the current line
	lastDraw time.Time
	// lastPct and started are per stage: the runs of a sweep report at
	// once, each throttled on its own.
	lastPct map[string]int
	started map[string]time.Time
}

// noPct is lastPct before a phase's first progress line: its decile (-1)
// differs from that of 0-9%, so the first event of a phase prints. (-1
// would not: -1/10 is 0 in Go.)
const noPct = -10

func newProgressBar(w io.Writer) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, tty: ok && term.IsTerminal(int(f.Fd())), lastPct: map[string]int{}, started: map[string]time.Time{}}
}

func (p *progressBar) event(e runner.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Message != "" {
		p.clear()
		fmt.Fprintf(p.w, "  %s\n", e)
		p.lastPct[e.Stage], p.started[e.Stage] = noPct, time.Now()
		return
	}
	if e.Total <= 0 {
		return
	}
	pct := percent(e)
	if p.tty {
		if time.Since(p.lastDraw) < 100*time.Millisecond && e.Done < e.Total {
			return
		}
		p.lastDraw = time.Now()
		fmt.Fprintf(p.w, "\r  [%d/%d %s] %s %3d%% %d/%d %s%s", e.Index+1, e.Of, e.Stage, bar(pct, 30), pct, e.Done, e.Total, e.Unit, eta(p.started[e.Stage], e))
		p.drawn = true
		return
	}
	last, ok := p.lastPct[e.Stage]
	if !ok {
		last = noPct
	}
	if pct/10 != last/10 || e.Done == e.Total {
		p.lastPct[e.Stage] = pct
		fmt.Fprintf(p.w, "  [%d/%d %s] %3d%% %d/%d %s%s\n", e.Index+1, e.Of, e.Stage, pct, e.Done, e.Total, e.Unit, eta(p.started[e.Stage], e))
	}
}

// Write lets log lines interleave with the bar without garbling it.
func (p *progressBar) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	return p.w.Write(b)
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *progressBar) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

// percent is how far e is, within [0, 100] whatever a stage reports (an
// overshoot must not break the bar).
func percent(e runner.Event) int {
	return int(min(100, max(0, 100*e.Done/e.Total)))
}

func bar(pct, width int) string {
	n := pct * width / 100
	return "[" + strings.Repeat("=", n) + strings.Repeat(" ", width-n) + "]"
}

// eta estimates the time left from the rate so far.
func eta(start time.Time, e runner.Event) string {
	el := time.Since(start)
	if e.Done <= 0 || start.IsZero() || el < time.Second {
		return ""
	}
	left := time.Duration(float64(el) * float64(e.Total-e.Done) / float64(e.Done))
	return fmt.Sprintf(" eta %s", left.Round(time.Second))
}

// throttledLog logs a pod's progress: every phase, and a transform's
// progress at most every 10% or 30 seconds, so logs stay readable.
func throttledLog(log *slog.Logger) func(runner.Event) {
	var mu sync.Mutex
	lastPct, last := noPct, time.Time{}
	var started time.Time
	return func(e runner.Event) {
		mu.Lock()
		defer mu.Unlock()
		if e.Message != "" {
			log.Info(e.String())
			lastPct, started = noPct, time.Now()
			return
		}
		if e.Total <= 0 {
			return
		}
		pct := percent(e)
		if pct/10 == lastPct/10 && time.Since(last) < 30*time.Second && e.Done < e.Total {
			return
		}
		lastPct, last = pct, time.Now()
		log.Info(e.String() + eta(started, e))
	}
}
