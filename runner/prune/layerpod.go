package prune

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
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
	x := p.o.pod
	mine, err := p.podPartial(ctx, w, batches, process)
	if err != nil {
		return 0, err
	}
	all, err := x.Hand(ctx, layerwise.PodRound, mine)
	if err != nil {
		return 0, &exchange.Error{Round: layerwise.PodRound, Err: err}
	}
	if x.Index != 0 {
		return 0, layerwise.ErrHandedOver
	}
	runs := 0
	for k, b := range all {
		part, r, err := p.decodePod(b)
		if err != nil {
			return 0, fmt.Errorf("the partial of layer index %d of %d: %w", k, len(all), err)
		}
		if err := p.assemble([]layerwise.Partial{part}); err != nil {
			return 0, fmt.Errorf("the partial of layer index %d of %d: %w", k, len(all), err)
		}
		runs += r
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

// podPartial is this index's encoded partial: the one an earlier attempt
// committed (a retried index does not prune its blocks again), or a new
// one.
func (p *hessianPass) podPartial(ctx context.Context, w *layerwise.Walk, batches []layerwise.Batch, process layerwise.Process) ([]byte, error) {
	x := p.o.pod
	shared, err := x.Shared(ctx, layerwise.PodRound)
	if err != nil {
		return nil, &exchange.Error{Round: layerwise.PodRound, Err: err}
	}
	if b, ok := shared[x.Index]; ok {
		return b, nil
	}
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
	names := slices.Sorted(maps.Keys(part))
	w.Int(int64(len(names)))
	for _, name := range names {
		tp, err := onnx.TensorToProto(part[name], name)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(tp)
		if err != nil {
			return nil, fmt.Errorf("tensor %q: %w", name, err)
		}
		w.String(name)
		w.String(string(b))
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
	raw := map[string]string{}
	for n := r.Len(8); n > 0; n-- {
		name := r.String()
		raw[name] = r.String()
	}
	if err := r.Err(); err != nil {
		return nil, 0, err
	}
	for i, l := range layers {
		if i < 0 || i >= len(p.layers) {
			return nil, 0, fmt.Errorf("layer %d: the model has %d weights hessian pruning takes", i, len(p.layers))
		}
		p.layers[i] = l
	}
	part := layerwise.Partial{}
	for name, b := range raw {
		var tp onnxpb.TensorProto
		if err := proto.Unmarshal([]byte(b), &tp); err != nil {
			return nil, 0, fmt.Errorf("tensor %q: %w", name, err)
		}
		t, err := onnx.TensorFromProto(&tp)
		if err != nil {
			return nil, 0, fmt.Errorf("tensor %q: %w", name, err)
		}
		part[name] = t
	}
	return part, runs, nil
}

func b2i(v bool) int64 {
	if v {
		return 1
	}
	return 0
}
