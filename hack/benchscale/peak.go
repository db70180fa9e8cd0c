package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime/metrics"
	"runtime/pprof"
	"syscall"
	"time"
)

// peakWatch samples the process every interval and, each time the Go
// heap's live bytes (as of the last collection) reach a new high, writes
// the heap profile to path: what is held at the peak, by where it was
// allocated (go tool pprof -sample_index inuse_space). Each new high of
// the resident set is logged to stderr with the Go runtime's share at
// that moment, so memory outside Go (ONNX Runtime's) shows as the
// difference.
type peakWatch struct {
	path     string
	stop     chan struct{}
	done     chan struct{}
	live     uint64
	rss      int64
	samples  []metrics.Sample
	profiles int
}

func startPeakWatch(path string, interval time.Duration) *peakWatch {
	p := &peakWatch{path: path, stop: make(chan struct{}), done: make(chan struct{}), samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"},
	}}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	return p
}

func (p *peakWatch) sample() {
	metrics.Read(p.samples)
	live := p.samples[0].Value.Uint64()
	goMapped := p.samples[1].Value.Uint64() - p.samples[2].Value.Uint64()
	if rss := peakResidentBytes(); rss > p.rss {
		p.rss = rss
		fmt.Fprintf(os.Stderr, "benchscale: rss %.0f MB (go mapped %.0f MB, go live %.0f MB, other %.0f MB)\n",
			mb(rss), mb(int64(goMapped)), mb(int64(live)), mb(rss-int64(goMapped)))
	}
	if live <= p.live+p.live/50 {
		return
	}
	p.live = live
	if p.path == "" {
		return
	}
	var b bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&b, 0); err == nil {
		_ = os.WriteFile(p.path, b.Bytes(), 0o644)
		p.profiles++
	}
}

// finish stops the sampler and logs the highest live heap seen.
func (p *peakWatch) finish() {
	close(p.stop)
	<-p.done
	fmt.Fprintf(os.Stderr, "benchscale: peak go live heap %.0f MB, peak rss seen %.0f MB (%d profiles written to %s)\n",
		mb(int64(p.live)), mb(p.rss), p.profiles, p.path)
}

func mb(n int64) float64 { return float64(n) / 1e6 }

// peakResidentBytes is the process's highest resident set so far
// (getrusage's maxrss, what the step reports as peakRSSBytes).
func peakResidentBytes() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
