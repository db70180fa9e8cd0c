package structured

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// exit is the tensor where a source's channels are observed for entropy:
// the last tensor (in graph order) that still holds them one by one,
// after the per-channel operators that follow the layer (bias,
// BatchNormalization, the activation), as Luo & Wu measure a filter's
// output after its activation.
func (a *analysis) exits() map[*source]string {
	out := map[*source]string{}
	for _, n := range a.g.GetNode() {
		for _, o := range n.GetOutput() {
			if s := a.origin[o]; s != nil && a.lay[o] != nil && slices.Equal(a.lay[o].ids, s.ids) {
				out[s] = o
			}
		}
	}
	return out
}

// entropyScores runs the model over the calibration data with every
// source's exit tensor exposed. Each channel's feature map is averaged per
// sample (global average pooling); the channel's score is the entropy of
// the histogram (opts.Bins bins over its range) of those averages.
func (a *analysis) entropyScores(ctx context.Context, m *onnx.Model) ([][]float64, int, error) {
	exits := a.exits()
	var names []string
	for _, s := range a.sources {
		if !slices.Contains(names, exits[s]) {
			names = append(names, exits[s])
		}
	}
	// means[t][c] collects channel c's per-sample averages at tensor t.
	means := map[string][][]float64{}
	samples, err := a.calibrate(ctx, m, names, a.opts.Progress, func(out map[string]*onnx.Tensor) error {
		for _, name := range names {
			if err := channelMeans(out[name], a.lay[name], means, name); err != nil {
				return fmt.Errorf("entropy calibration: tensor %q: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	scores := make([][]float64, len(a.sources))
	for i, s := range a.sources {
		ms := means[exits[s]]
		scores[i] = make([]float64, len(s.ids))
		for c := range scores[i] {
			scores[i][c] = entropy(ms[c], a.opts.Bins)
		}
	}
	return scores, samples, nil
}

// calibrate runs m over the calibration samples (opts.Samples of them, or
// all) in batches with the named tensors exposed, and hands each batch's
// outputs to fn. It returns the number of samples run.
func (a *analysis) calibrate(ctx context.Context, m *onnx.Model, names []string, progress func(done, total int), fn func(map[string]*onnx.Tensor) error) (int, error) {
	probe, err := m.ExposeOutputs(names)
	if err != nil {
		return 0, err
	}
	b, err := probe.Bytes()
	if err != nil {
		return 0, err
	}
	sess, err := ort.NewSession(m.Name+" (calibration)", b, ort.Options{IntraOpThreads: a.opts.Threads})
	if err != nil {
		return 0, err
	}
	defer sess.Close()
	in := feedInputs(a.g)[0]
	d, err := fitInput(m, in, a.opts.Calibration)
	if err != nil {
		return 0, err
	}
	if a.opts.Samples > 0 {
		d = d.Take(a.opts.Samples)
	}
	batch, fixed := batchOf(in, a.opts.BatchSize), batchOf(in, 0) > 0
	done := 0
	for start := 0; start < d.Len(); start += batch {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		x := batchTensor(d, start, batch)
		if fixed && x.Dims[0] != int64(batch) {
			break // a fixed batch size the last samples cannot fill
		}
		out, err := sess.Run(map[string]*onnx.Tensor{in.GetName(): x})
		if err != nil {
			return done, fmt.Errorf("calibration run: %w", err)
		}
		if err := fn(out); err != nil {
			return done, err
		}
		done += int(x.Dims[0])
		if progress != nil {
			progress(done, d.Len())
		}
	}
	return done, nil
}

// channelMeans appends, for each sample of t and each channel of l, the
// mean of the channel's elements.
func channelMeans(t *onnx.Tensor, l *layout, means map[string][][]float64, name string) error {
	vals, err := t.Float32s()
	if err != nil {
		return err
	}
	dims := t.Dims
	if l.axis >= len(dims) || dims[l.axis] != int64(l.size()) {
		return fmt.Errorf("shape %v does not hold %d channels on axis %d", dims, l.size(), l.axis)
	}
	batch := 1
	if l.axis > 0 {
		batch = int(dims[0])
	}
	outer, size, inner := int(prod(dims[:l.axis])), l.size(), int(prod(dims[l.axis+1:]))
	perSample := outer / batch
	sums := make([]float64, batch*len(l.ids))
	for o := range outer {
		b := o / perSample
		for p := range size {
			row := vals[(o*size+p)*inner : (o*size+p+1)*inner]
			s := 0.0
			for _, v := range row {
				s += float64(v)
			}
			sums[b*len(l.ids)+p/l.block] += s
		}
	}
	count := float64(perSample * l.block * inner)
	ms := means[name]
	if ms == nil {
		ms = make([][]float64, len(l.ids))
	}
	for b := range batch {
		for c := range l.ids {
			ms[c] = append(ms[c], sums[b*len(l.ids)+c]/count)
		}
	}
	means[name] = ms
	return nil
}

// entropy estimates the entropy (nats) of values from a histogram of bins
// equal bins over their range; constant values have entropy 0.
func entropy(values []float64, bins int) float64 {
	if len(values) == 0 {
		return 0
	}
	lo, hi := slices.Min(values), slices.Max(values)
	if !(hi > lo) {
		return 0
	}
	counts := make([]int, bins)
	for _, v := range values {
		i := int(float64(bins) * (v - lo) / (hi - lo))
		counts[min(i, bins-1)]++
	}
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / float64(len(values))
			h -= p * math.Log(p)
		}
	}
	return h
}
