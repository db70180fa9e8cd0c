package feed

import (
	"context"
	"sync"
)

// Parallel computes work(0) ... work(n-1) on up to workers goroutines
// (batches run in parallel on sessions with one intra-op thread each keep
// the cores busier than small operators split across threads) and hands
// each result to deliver in order of i, on the calling goroutine: the
// caller's sums come out the same whatever order the work finishes in,
// and deliver needs no lock. At most 2*workers results wait to be
// delivered. The first error, of work or deliver, stops handing out more
// work and is returned, as is the context's.
func Parallel[R any](ctx context.Context, n, workers int, work func(i int) (R, error), deliver func(i int, r R) error) error {
	workers = max(1, min(workers, n))
	parent := ctx
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type result struct {
		r   R
		err error
	}
	ready := make([]chan result, n)
	for i := range ready {
		ready[i] = make(chan result, 1)
	}
	next := make(chan int)
	window := make(chan struct{}, 2*workers) // results not yet delivered
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r, err := work(i)
				ready[i] <- result{r, err}
			}
		}()
	}
	go func() {
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
	}()
	var err error
	for i := range n {
		var res result
		select {
		case res = <-ready[i]:
		case <-ctx.Done():
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
	wg.Wait()
	return err
}
