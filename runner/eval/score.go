package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/feed"
)

// maxEvalBatch bounds the samples of one scoring run, and evalBatchBytes
// the input bytes: big inputs (images of 640x640) go a few at a time so
// the activations stay small.
const (
	maxEvalBatch   = 64
	evalBatchBytes = 4 << 20
)

// tally accumulates scores over batches, so outputs are never all held at
// once.
type tally struct {
	n, correct, sourceCorrect, agree int
	cosine                           float64
}

// score runs the model (and the source) over every sample, batch by
// batch. Batches go to workers goroutines sharing the sessions (Run is safe
// for concurrent use); the sessions should have one intra-op thread each,
// as running whole batches in parallel keeps the cores busier than
// splitting small operators across threads.
func score(ctx context.Context, req Request, data, srcData *feed.Data, sess, src *feed.Session, workers int, rep *Report) error {
	batch, fixed, err := feed.BatchSize(maxEvalBatch, evalBatchBytes, data, srcData)
	if err != nil {
		return fmt.Errorf("%s: %w", req.name(), err)
	}
	total := data.Len()
	spans := feed.Plan(total, batch, fixed, feed.Pad)
	// One tally per batch, summed in order: the cosine sum is the same
	// float whatever order the workers finish in.
	var sum tally
	done := 0
	err = feed.Parallel(ctx, len(spans), workers, func(i int) (tally, error) {
		var t tally
		err := scoreBatch(req, data, srcData, sess, src, spans[i], &t)
		return t, err
	}, func(i int, t tally) error {
		sum.merge(t)
		done += spans[i].N
		if req.Progress != nil {
			req.Progress(done, total)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sum.report(rep, data.Labels() != nil, src != nil)
	return nil
}

// scoreBatch runs one batch, whose first sp.N samples are real (the rest
// pad a fixed batch), and adds their scores to t.
func scoreBatch(req Request, data, srcData *feed.Data, sess, src *feed.Session, sp feed.Span, t *tally) error {
	out, per, err := firstOutput(req.name(), sess, data, sp)
	if err != nil {
		return err
	}
	var ref []float32
	if src != nil {
		var srcPer int
		if ref, srcPer, err = firstOutput(req.sourceName(), src, srcData, sp); err != nil {
			return err
		}
		if srcPer != per {
			return fmt.Errorf("%s: the first output has %d values per sample, the source model %s's %d: they cannot be compared", req.name(), per, req.sourceName(), srcPer)
		}
	}
	var labels []int64
	if l := data.Labels(); l != nil {
		labels = l[sp.Start : sp.Start+sp.N]
	}
	t.add(out, ref, per, labels)
	return nil
}

// firstOutput runs the batch and returns the first output of its first
// sp.N samples as float32, and its number of values per sample.
func firstOutput(name string, s *feed.Session, d *feed.Data, sp feed.Span) ([]float32, int, error) {
	in, err := d.Tensors(sp.Samples())
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	outs, err := s.Run(in)
	if err != nil {
		return nil, 0, err
	}
	out := s.Outputs()[0].Name
	vals, err := outs[out].Float32s()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: output %q: %w", name, out, err)
	}
	if len(vals)%sp.Size != 0 {
		return nil, 0, fmt.Errorf("%s: output %q has %d values for a batch of %d: its first dimension is not the batch", name, out, len(vals), sp.Size)
	}
	per := len(vals) / sp.Size
	vals = vals[:sp.N*per]
	for i, v := range vals {
		if math.IsNaN(float64(v)) {
			return nil, 0, fmt.Errorf("%s: output %q is NaN for sample %d (value %d)", name, out, sp.Start+i/per, i%per)
		}
	}
	return vals, per, nil
}

// add scores one batch: out and ref (nil without a source) hold per values
// for each sample.
func (t *tally) add(out, ref []float32, per int, labels []int64) {
	for s := range len(out) / max(per, 1) {
		o := out[s*per : (s+1)*per]
		top := argmax(o)
		if labels != nil && int64(top) == labels[s] {
			t.correct++
		}
		if ref != nil {
			r := ref[s*per : (s+1)*per]
			refTop := argmax(r)
			if refTop == top {
				t.agree++
			}
			if labels != nil && int64(refTop) == labels[s] {
				t.sourceCorrect++
			}
			t.cosine += compare.Cosine(o, r)
		}
		t.n++
	}
}

func (t *tally) merge(o tally) {
	t.n += o.n
	t.correct += o.correct
	t.sourceCorrect += o.sourceCorrect
	t.agree += o.agree
	t.cosine += o.cosine
}

func (t *tally) report(rep *Report, labeled, compared bool) {
	if t.n == 0 {
		return
	}
	n := float64(t.n)
	if rep.Labeled = labeled; labeled {
		rep.Accuracy = float64(t.correct) / n
		if compared {
			rep.SourceAccuracy = float64(t.sourceCorrect) / n
		}
	}
	if rep.Compared = compared; compared {
		rep.Top1Agreement = float64(t.agree) / n
		rep.Cosine = t.cosine / n
	}
}

// argmax is the index of the largest value (the first one on ties).
func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
