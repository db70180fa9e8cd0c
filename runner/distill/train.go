package distill

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/panics"
)

// Progress is one report of the training loop.
type Progress struct {
	Step, Steps   int64
	Epoch, Epochs int
	// Loss is the mean loss of the steps since the last report.
	Loss float64
	// ImagesPerSec is the training throughput since the start.
	ImagesPerSec float64
	ETA          time.Duration
}

// progressEvery is how often the loop reports progress.
const progressEvery = time.Second

// lossWindow is how many steps the first and final losses average.
const lossWindow = 20

// run is one training run: the data, the teacher's soft targets and the
// replicas that share the work of each batch.
type run struct {
	p      *plan
	s      *settings
	data   *dataset.Dataset
	soft   []float32 // n·k softened teacher outputs
	k      int
	reps   []trainer
	shards []int // samples per replica; they add up to the batch
	report func(Progress)
}

// stats is what the loop measured.
type stats struct {
	steps      int64
	epochs     int
	firstLoss  float64 // mean loss of the first lossWindow steps
	lastLoss   float64 // mean loss of the last lossWindow steps
	seconds    float64
	cpuSeconds float64
	imagesPerS float64
}

// steps returns the number of optimizer steps of the run: whole batches
// of each epoch (the last, partial batch of an epoch is dropped, and the
// shuffle gives its samples their turn in other epochs), capped by
// maxSteps.
func (r *run) steps() (perEpoch, total int64) {
	batch := sumInts(r.shards)
	perEpoch = int64(r.data.Len() / batch)
	total = perEpoch * int64(r.s.epochs)
	if r.s.maxSteps > 0 && total > r.s.maxSteps {
		total = r.s.maxSteps
	}
	return perEpoch, total
}

func (r *run) train(ctx context.Context) (stats, error) {
	perEpoch, total := r.steps()
	batch := sumInts(r.shards)
	size := r.data.SampleSize()
	opt := newOptimizer(r.s, r.p.params, total)
	rng := rand.New(rand.NewPCG(uint64(r.s.seed), 0x6b6f6d7072657373))
	xb := make([]float32, batch*size)
	pb := make([]float32, batch*r.k)
	var yb []int64
	if r.data.Labels != nil {
		yb = make([]int64, batch)
	}
	grads := make([][]float32, len(r.p.params))
	for i, pr := range r.p.params {
		grads[i] = make([]float32, len(pr.data))
	}
	var st stats
	start, last, cpu0 := time.Now(), time.Now(), cpuTime()
	var windowLoss float64
	var windowSteps int
	firstWindow := min(total, lossWindow)
	recent := make([]float64, 0, lossWindow)
	for epoch := 0; st.steps < total; epoch++ {
		order := rng.Perm(r.data.Len())
		st.epochs = epoch + 1
		for b := int64(0); b < perEpoch && st.steps < total; b++ {
			if err := ctx.Err(); err != nil {
				return st, err
			}
			r.gather(order[int(b)*batch:int(b+1)*batch], xb, pb, yb)
			loss, err := r.step(xb, pb, yb, grads)
			if err != nil {
				return st, fmt.Errorf("training step %d: %w", st.steps+1, err)
			}
			opt.step(r.p.params, grads)
			st.steps++
			if st.steps <= firstWindow {
				st.firstLoss += loss / float64(firstWindow)
			}
			windowLoss += loss
			windowSteps++
			if len(recent) == lossWindow {
				recent = recent[1:]
			}
			recent = append(recent, loss)
			if now := time.Now(); now.Sub(last) >= progressEvery || st.steps == total {
				el := now.Sub(start)
				ips := float64(st.steps) * float64(batch) / el.Seconds()
				eta := time.Duration(float64(total-st.steps) * float64(batch) / ips * float64(time.Second))
				r.report(Progress{Step: st.steps, Steps: total, Epoch: epoch + 1, Epochs: int((total + perEpoch - 1) / perEpoch),
					Loss: windowLoss / float64(windowSteps), ImagesPerSec: ips, ETA: eta})
				last = now
				windowLoss, windowSteps = 0, 0
			}
		}
	}
	for _, l := range recent {
		st.lastLoss += l / float64(len(recent))
	}
	st.seconds = time.Since(start).Seconds()
	st.cpuSeconds = (cpuTime() - cpu0).Seconds()
	st.imagesPerS = float64(st.steps) * float64(batch) / st.seconds
	return st, nil
}

// gather copies the samples idx into the batch buffers.
func (r *run) gather(idx []int, xb, pb []float32, yb []int64) {
	size := r.data.SampleSize()
	for j, i := range idx {
		r.data.SampleInto(xb[j*size:(j+1)*size], i)
		copy(pb[j*r.k:(j+1)*r.k], r.soft[i*r.k:(i+1)*r.k])
		if yb != nil {
			yb[j] = r.data.Labels[i]
		}
	}
}

// step runs every replica on its shard at once and averages their
// gradients into grads, weighting each by its share of the batch (each
// replica's loss is the mean over its own shard).
func (r *run) step(xb, pb []float32, yb []int64, grads [][]float32) (float64, error) {
	size := r.data.SampleSize()
	batch := sumInts(r.shards)
	losses := make([]float64, len(r.reps))
	errs := make([]error, len(r.reps))
	var g panics.Group // a replica's panic is raised again by Wait
	off := 0
	for i, rep := range r.reps {
		n := r.shards[i]
		var y []int64
		if yb != nil {
			y = yb[off : off+n]
		}
		x, p := xb[off*size:(off+n)*size], pb[off*r.k:(off+n)*r.k]
		g.Go(func() { losses[i], errs[i] = rep.step(x, p, y) })
		off += n
	}
	g.Wait()
	var loss float64
	for i, err := range errs {
		if err != nil {
			return 0, err
		}
		loss += losses[i] * float64(r.shards[i]) / float64(batch)
	}
	for j, g := range grads {
		clear(g)
		for i, rep := range r.reps {
			rg := rep.grad(j)
			if rg == nil {
				continue
			}
			w := float32(r.shards[i]) / float32(batch)
			for e, v := range rg {
				g[e] += w * v
			}
		}
	}
	return loss, nil
}

func sumInts(v []int) int {
	s := 0
	for _, x := range v {
		s += x
	}
	return s
}

// splitBatch shares a batch between replicas as evenly as possible.
func splitBatch(batch, replicas int) []int {
	replicas = max(1, min(replicas, batch))
	out := make([]int, replicas)
	for i := range out {
		out[i] = batch / replicas
		if i < batch%replicas {
			out[i]++
		}
	}
	return out
}
