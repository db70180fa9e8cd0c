package feed

import (
	"context"
	"errors"

	"github.com/kompress/kompress/runner/panics"
)

// Parallel computes work(0) ... work(n-1) on up to workers goroutines
// (batches run in parallel on sessions with one intra-op thread each keep
// the cores busier than small operators split across threads) and hands
// each result to deliver in order of i, on the calling goroutine: the
// caller's sums come out the same whatever order the work finishes in,
// and deliver needs no lock. At most 2*workers results wait to be
// delivered. The first error, of work or deliver, stops handing out more
// work and is returned, as is the context's.
//
// Work runs on goroutines of a panics.Group: a panic in work stops the
// others and is raised again here, on the calling goroutine, with its
// own value and stack (runner.Execute reports it as InternalError), so
// it never crashes the process.
func Parallel[R any](ctx context.Context, n, workers int, work func(i int) (R, error), deliver func(i int, r R) error) error {
	workers = max(1, min(workers, n))
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		r   R
		err error
	}
	// Item i is handed out only once it holds one of the window's 2*workers
	// tokens, given back when i is delivered: items in flight are never
	// more than the window apart, and each has its own slot of ready.
	window := make(chan struct{}, 2*workers) // results not yet delivered
	ready := make([]chan result, cap(window))
	for i := range ready {
		ready[i] = make(chan result, 1)
	}
	next := make(chan int)
	g := panics.Group{OnPanic: func() { cancel(errPanicked) }}
	for range workers {
		g.Go(func() {
			for i := range next {
				r, err := work(i)
				ready[i%len(ready)] <- result{r, err}
			}
		})
	}
	g.Go(func() {
		defer close(next)
		for i := range n {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	})
	var err error
	for i := range n {
		var res result
		select {
		case res = <-ready[i%len(ready)]:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		if err != nil {
			break
		}
		if err = parent.Err(); err != nil {
			break
		}
		<-window
		if err = res.err; err == nil {
			err = deliver(i, res.r)
		}
		if err != nil {
			break
		}
	}
	cancel(err) // stops the dispatcher if it is still handing out work
	g.Wait()    // raises a worker's panic here
	return err
}

// errPanicked cancels the work when a worker panicked; Wait raises the
// panic itself.
var errPanicked = errors.New("a worker panicked")
