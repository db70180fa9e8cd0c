// Package panics carries a panic from a goroutine the runner starts to
// the goroutine that waits for it. A panic on a goroutine of its own
// crashes the process whatever the goroutine that started it recovers:
// a stage pod would die without its termination message. Every
// goroutine the runner starts goes through a Group (a test in this
// package fails on a go statement anywhere else in runner/ or
// cmd/kompress): the panic is recovered where it happens and raised
// again by Wait on the waiting goroutine as a *Panic that keeps the
// original value and stack, so runner.Execute reports it like a panic of
// its own goroutine (reason InternalError, the panic's first line and
// the file:line that raised it).
package panics

import (
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
)

// Panic is a recovered panic: what was passed to panic, and the stack of
// the goroutine that panicked, taken where it was recovered.
type Panic struct {
	Value any
	Stack string
}

// Recovered is p, a value recover returned, with the current
// goroutine's stack: call it in the deferred function that recovered p.
// A *Panic passes through, keeping the stack of the goroutine it came
// from.
func Recovered(p any) *Panic {
	if pv, ok := p.(*Panic); ok {
		return pv
	}
	return &Panic{Value: p, Stack: string(debug.Stack())}
}

// Message is the panic's first line and where it was raised:
// "assignment to entry in nil map at /src/x.go:12".
func (p *Panic) Message() string {
	msg, _, _ := strings.Cut(fmt.Sprint(p.Value), "\n")
	if at := Site(p.Stack); at != "" {
		msg += " at " + at
	}
	return msg
}

// Error makes a *Panic an error for callers that return it.
func (p *Panic) Error() string { return "panic: " + p.Message() }

// Site is the file:line of the frame that panicked: the first frame
// below runtime.gopanic in a stack taken in (or below) the deferred
// function that recovered.
func Site(stack string) string {
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

// Group runs goroutines and waits for them, like a sync.WaitGroup, except
// that a panic on one of them does not crash the process: it is
// recovered there and Wait raises the first one again on the waiting
// goroutine, as a *Panic. The zero Group is ready to use.
type Group struct {
	// OnPanic, if set, is called once, on the goroutine that panicked
	// first, as it exits: a way to stop the others (cancel their
	// context) so that the waiting goroutine is not left waiting for
	// work that will never come.
	OnPanic func()

	wg    sync.WaitGroup
	once  sync.Once
	first *Panic
}

// Go runs f on a new goroutine.
func (g *Group) Go(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				pv := Recovered(p)
				g.once.Do(func() {
					g.first = pv
					if g.OnPanic != nil {
						g.OnPanic()
					}
				})
			}
		}()
		f()
	}()
}

// Wait waits for every goroutine Go started; if one panicked, Wait
// panics with the first *Panic.
func (g *Group) Wait() {
	g.wg.Wait()
	if g.first != nil {
		panic(g.first)
	}
}
