package eval

import (
	"context"
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
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
	n, correct, sourceCorrect int
	// outs has one entry per output, in the model's order (nil without a
	// source).
	outs []outputTally
}

// outputTally accumulates the comparison of one output with the
// source's.
type outputTally struct {
	// kind, classes and positions are set by the first batch and must
	// not change (a model whose outputs change shape between batches is
	// compared as the first batch said).
	kind      OutputKind
	classes   int
	positions int
	// relative sums the per-sample relative errors (outputs of several
	// values per sample); signal and noise the energies of every value.
	relative, signal, noise float64
	maxAbs                  float64
	agree, compared         int
	cosine                  float64
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
	if req.Exchange != nil {
		sum, err := scoreShards(ctx, req, data, srcData, sess, src, workers, spans)
		if err != nil {
			return err
		}
		sum.report(rep, outputNames(sess), data.Labels() != nil, src != nil)
		return nil
	}
	// One tally per batch, summed in order: float sums are the same
	// whatever order the workers finish in.
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
	var names []string
	for _, o := range sess.Outputs() {
		names = append(names, o.Name)
	}
	sum.report(rep, names, data.Labels() != nil, src != nil)
	return nil
}

// batchOutput is one output of a batch's run: values of its first sp.N
// samples, values per sample, and the size of its last axis.
type batchOutput struct {
	vals    []float32
	per     int
	classes int
}

// scoreBatch runs one batch, whose first sp.N samples are real (the rest
// pad a fixed batch), and adds their scores to t.
func scoreBatch(req Request, data, srcData *feed.Data, sess, src *feed.Session, sp feed.Span, t *tally) error {
	outs, err := runOutputs(req.name(), sess, data, sp)
	if err != nil {
		return err
	}
	var labels []int64
	if l := data.Labels(); l != nil {
		labels = l[sp.Start : sp.Start+sp.N]
	}
	var refs []batchOutput
	if src != nil {
		if refs, err = runOutputs(req.sourceName(), src, srcData, sp); err != nil {
			return err
		}
		if len(refs) != len(outs) {
			return fmt.Errorf("%s has %d outputs %q, the source model %s has %d %q: they cannot be compared",
				req.name(), len(outs), outputNames(sess), req.sourceName(), len(refs), outputNames(src))
		}
		for i, o := range outs {
			if refs[i].per != o.per {
				return fmt.Errorf("%s: output %q has %d values per sample, the source model %s's %d: they cannot be compared",
					req.name(), sess.Outputs()[i].Name, o.per, req.sourceName(), refs[i].per)
			}
		}
	}
	t.add(outs, refs, labels)
	return nil
}

func outputNames(s *feed.Session) []string {
	var names []string
	for _, o := range s.Outputs() {
		names = append(names, o.Name)
	}
	return names
}

// runOutputs runs the batch and returns every output of its first sp.N
// samples as float32. A run that returns NaN refuses the model.
func runOutputs(name string, s *feed.Session, d *feed.Data, sp feed.Span) ([]batchOutput, error) {
	in, err := d.Tensors(sp.Samples())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	outs, err := s.Run(in)
	if err != nil {
		return nil, err
	}
	res := make([]batchOutput, len(s.Outputs()))
	for i, o := range s.Outputs() {
		t := outs[o.Name]
		if res[i], err = batchValues(name, o.Name, t, sp); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// batchValues reads one output of a batch: its values must split into
// the batch's samples (its first dimension is the batch, or the batch is
// one sample).
func batchValues(name, out string, t *onnx.Tensor, sp feed.Span) (batchOutput, error) {
	vals, err := t.Float32s()
	if err != nil {
		return batchOutput{}, fmt.Errorf("%s: output %q: %w", name, out, err)
	}
	if len(vals)%sp.Size != 0 {
		return batchOutput{}, fmt.Errorf("%s: output %q has %d values for a batch of %d: its first dimension is not the batch", name, out, len(vals), sp.Size)
	}
	per := len(vals) / sp.Size
	vals = vals[:sp.N*per]
	for i, v := range vals {
		if math.IsNaN(float64(v)) {
			return batchOutput{}, fmt.Errorf("%s: output %q is NaN for sample %d (value %d)", name, out, sp.Start+i/max(per, 1), i%max(per, 1))
		}
	}
	classes := per
	if len(t.Dims) >= 3 {
		// [N, T, C] and higher ranks: top-1 per position on the last
		// axis.
		classes = int(t.Dims[len(t.Dims)-1])
	}
	return batchOutput{vals: vals, per: per, classes: classes}, nil
}

// add scores one batch's outputs against the source's (refs, nil without
// a source).
func (t *tally) add(outs, refs []batchOutput, labels []int64) {
	first := outs[0]
	n := len(first.vals) / max(first.per, 1)
	for s := range n {
		o := first.vals[s*first.per : (s+1)*first.per]
		top := compare.Argmax(o)
		if labels != nil && int64(top) == labels[s] {
			t.correct++
		}
		if refs != nil && labels != nil {
			r := refs[0].vals[s*first.per : (s+1)*first.per]
			if int64(compare.Argmax(r)) == labels[s] {
				t.sourceCorrect++
			}
		}
	}
	t.n += n
	if refs == nil {
		return
	}
	t.outs = make([]outputTally, len(outs))
	for i, o := range outs {
		t.outs[i].add(o, refs[i], n)
	}
}

// add compares n samples of one output.
func (t *outputTally) add(o, ref batchOutput, n int) {
	t.kind, t.classes = kindOf(o.per, o.classes), o.classes
	if t.kind != OutputValue {
		t.positions = o.per / o.classes
	}
	for s := range n {
		got, want := o.vals[s*o.per:(s+1)*o.per], ref.vals[s*o.per:(s+1)*o.per]
		signal, noise := compare.Energies(got, want)
		t.signal += signal
		t.noise += noise
		t.maxAbs = max(t.maxAbs, compare.MaxAbsError(got, want))
		if t.kind == OutputValue {
			continue
		}
		t.relative += compare.Ratio(signal, noise)
		t.cosine += compare.Cosine(got, want)
		agree, positions := compare.Top1(got, want, o.classes)
		t.agree += agree
		t.compared += positions
	}
}

// kindOf says how an output of per values per sample, classes on its
// last axis, is compared.
func kindOf(per, classes int) OutputKind {
	switch {
	case per <= 1 || classes <= 1:
		return OutputValue
	case classes == per:
		return OutputScores
	}
	return OutputSequence
}

func (t *tally) merge(o tally) {
	t.n += o.n
	t.correct += o.correct
	t.sourceCorrect += o.sourceCorrect
	if o.outs == nil {
		return
	}
	if t.outs == nil {
		t.outs = make([]outputTally, len(o.outs))
	}
	for i, b := range o.outs {
		a := &t.outs[i]
		if a.kind == "" {
			a.kind, a.classes, a.positions = b.kind, b.classes, b.positions
		}
		a.relative += b.relative
		a.signal += b.signal
		a.noise += b.noise
		a.maxAbs = max(a.maxAbs, b.maxAbs)
		a.agree += b.agree
		a.compared += b.compared
		a.cosine += b.cosine
	}
}

func (t *tally) report(rep *Report, names []string, labeled, compared bool) {
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
	if rep.Compared = compared; !compared {
		return
	}
	rep.Outputs = make([]OutputFidelity, len(t.outs))
	for i, o := range t.outs {
		f := OutputFidelity{
			Name: names[i], Kind: o.kind, Positions: o.positions, Classes: o.classes,
			RelativeError: compare.Ratio(o.signal, o.noise), MaxAbsError: o.maxAbs, SNRDb: compare.SNRDb(o.signal, o.noise),
		}
		if o.kind != OutputValue {
			f.RelativeError = o.relative / n
			f.Cosine = o.cosine / n
			f.Top1Agreement = float64(o.agree) / float64(max(o.compared, 1))
		} else {
			f.Classes = 0
		}
		rep.Outputs[i] = f
	}
	if first := rep.Outputs[0]; first.Kind != OutputValue {
		rep.Top1Agreement, rep.Cosine = first.Top1Agreement, first.Cosine
	}
}
