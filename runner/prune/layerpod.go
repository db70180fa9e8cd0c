package prune

import (
	"context"
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/layerwise"
)

// podWalk is hessian pruning on one index of an Indexed Job of layer
// workers (spec.parallelism.layers on a cluster): the index prunes its
// range of blocks (layerwise.Walk.RunWorker) and hands index 0 its
// partial: the new tensors as ONNX TensorProtos and its layers' report
// entries. Index 0 assembles every index's partial in index order, as
// the in-process workers' are, so the model is the one layers: 1 writes;
// the other indices return layerwise.ErrHandedOver. It returns the
// segment runs of every index (HessianStats.Passes).
func (p *hessianPass) podWalk(ctx context.Context, w *layerwise.Walk, batches []layerwise.Batch, process layerwise.Process) (int, error) {
	runs := 0
	err := layerwise.HandOver(ctx, p.o.pod, func() ([]byte, error) {
		return p.podPartial(ctx, w, batches, process)
	}, func(b []byte) error {
		part, r, err := p.decodePod(b)
		if err != nil {
			return err
		}
		runs += r
		return p.assemble([]layerwise.Partial{part})
	})
	if err != nil {
		return 0, err
	}
	// The other indices' layers were solved elsewhere: every target's
	// zeros and mask digest are read back from the assembled model, as
	// wave computes them from the values it wrote.
	for i, t := range p.targets {
		vals, err := t.w.Float32s()
		if err != nil {
			return 0, fmt.Errorf("weight %q: %w", t.w.Name, err)
		}
		l := &p.layers[i]
		var zeros int
		l.maskDigest, zeros = zeroPattern(t.w.Dims, vals)
		l.params, l.zeros = int64(len(vals)), int64(zeros)
	}
	return runs, nil
}

// podPartial prunes this index's blocks and encodes its partial.
func (p *hessianPass) podPartial(ctx context.Context, w *layerwise.Walk, batches []layerwise.Batch, process layerwise.Process) ([]byte, error) {
	x := p.o.pod
	part, st, err := w.RunWorker(ctx, batches, process, x.Index)
	if err != nil {
		return nil, err
	}
	lo, hi := layerwise.Of(x.Index, x.Of, len(w.Plan.Segments))
	p.mu.Lock()
	p.stats.CalibrationSeconds += st.Seconds
	if x.Log != nil {
		// The index's own cost: the results' times are index 0's.
		x.Log.Info("layer index pruned its blocks", "index", x.Index, "of", x.Of, "segments", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(w.Plan.Segments)),
			"captureSeconds", st.Seconds, "calibrationSeconds", p.stats.CalibrationSeconds, "solveSeconds", p.stats.SolveSeconds)
	}
	p.mu.Unlock()
	var ids []int
	for _, s := range w.Plan.Segments[lo:hi] {
		ids = append(ids, s.Layers...)
	}
	return p.encodePod(part, ids, st.Runs)
}

// encodePod writes a partial canonically (a retry must write the same
// bytes): the segment runs, the layers' report entries by id ascending,
// then the tensors by name. Times are left out: they differ run to run.
func (p *hessianPass) encodePod(part layerwise.Partial, ids []int, runs int) ([]byte, error) {
	var w exchange.Writer
	w.Int(int64(runs))
	slices.Sort(ids)
	w.Int(int64(len(ids)))
	for _, i := range ids {
		l := p.layers[i]
		w.Int(int64(i))
		w.String(l.mask)
		w.Float64(l.loss)
		w.Int(l.rows)
		w.Int(int64(l.features))
		w.Int(b2i(l.refit))
		w.String(l.bias)
	}
	if err := layerwise.WriteTensors(&w, part); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// decodePod reads a partial encodePod wrote into the report entries of
// its layers and returns its tensors and segment runs.
func (p *hessianPass) decodePod(b []byte) (layerwise.Partial, int, error) {
	r := exchange.NewReader(b)
	runs := int(r.Int())
	layers := map[int]hessianLayer{}
	for n := r.Len(8); n > 0; n-- {
		i := int(r.Int())
		layers[i] = hessianLayer{mask: r.String(), loss: r.Float64(), rows: r.Int(), features: int(r.Int()), refit: r.Int() == 1, bias: r.String()}
	}
	part, err := layerwise.ReadTensors(r)
	if err != nil {
		return nil, 0, err
	}
	for i, l := range layers {
		if i < 0 || i >= len(p.layers) {
			return nil, 0, fmt.Errorf("layer %d: the model has %d weights hessian pruning takes", i, len(p.layers))
		}
		p.layers[i] = l
	}
	return part, runs, nil
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}
