package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/panics"
)

// prefetchDepth is how many weights are read ahead of the one being
// quantized: reading a weight (from its external data file, or decoding
// it) overlaps quantizing the one before, while at most this many extra
// weights are held.
const prefetchDepth = 2

// fetched is a weight read ahead, or the error reading it.
type fetched struct {
	t   *onnx.Tensor
	err error
}

// prefetcher reads the weights of slots, in order, at most prefetchDepth
// ahead of the slot taken last. Every slot must be taken, in order, or
// the prefetcher stopped. A panic while reading is raised again by take
// or stop, on the quantizing goroutine.
type prefetcher struct {
	results []chan fetched
	room    chan struct{}
	quit    chan struct{}
	failed  chan struct{}
	g       panics.Group
}

// skip says which slots read their weight themselves (streamed).
func prefetch(slots []weightSlot, skip func(weightSlot) bool) *prefetcher {
	p := &prefetcher{results: make([]chan fetched, len(slots)), room: make(chan struct{}, prefetchDepth), quit: make(chan struct{}), failed: make(chan struct{})}
	for i := range p.results {
		p.results[i] = make(chan fetched, 1)
	}
	p.g.OnPanic = func() { close(p.failed) }
	p.g.Go(func() {
		for i, s := range slots {
			select {
			case p.room <- struct{}{}:
			case <-p.quit:
				return
			}
			if skip(s) {
				p.results[i] <- fetched{}
				continue
			}
			t, err := s.weight.w.Tensor()
			p.results[i] <- fetched{t, err}
		}
	})
	return p
}

// take returns slot i's weight as read ahead, and makes room for the
// next read.
func (p *prefetcher) take(i int) fetched {
	var f fetched
	select {
	case f = <-p.results[i]:
	case <-p.failed:
		p.g.Wait()
		panic("unreachable: the prefetcher failed without a panic")
	}
	<-p.room
	return f
}

// stop ends the reads ahead (after the last take, or on an error) and
// waits for the read in progress.
func (p *prefetcher) stop() {
	close(p.quit)
	p.g.Wait()
}
