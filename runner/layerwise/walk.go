package layerwise

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Batch is one calibration batch at a cut: tensor name to value.
type Batch = map[string]*onnx.Tensor

// Process handles one wave of a segment's layers: sub is the segment as
// a model with the weights as they are now, batches its inputs for every
// calibration batch, ids the layers of the wave. It returns the new
// values of the initializers it changed (the layers' weights, a bias):
// the segment's later runs use them, and the walk hands them to the
// caller at the end (Partial). Process must not change the model
// walked: with Workers > 1 it runs on several goroutines at once, for
// different segments.
type Process func(ctx context.Context, sub *onnx.Model, batches []Batch, ids []int) (map[string]*onnx.Tensor, error)

// Walk processes a model's layers segment by segment.
type Walk struct {
	Model *onnx.Model
	Plan  *Plan
	// Wave numbers each layer: a segment's layers are processed wave by
	// wave, in increasing order, so a layer is calibrated on the outputs
	// of the layers before it already processed (SparseGPT's and GPTQ's
	// sequential order).
	Wave []int
	// Shards is the number of sessions the segment runs on at once, each
	// on an aligned range of shard.Units units of batches (a batch's
	// outputs do not depend on which session ran it).
	Shards int
	// Mine, when set, lists the shards whose batches this process runs
	// (one index of an Indexed Job of data shards: the others' batches
	// are run by their own pods, and nothing here reads them); the
	// others' batches carry no segment outputs. Nil is every shard.
	Mine []int
	// NoPropagate feeds every segment the inputs the original model gives
	// it (captured once, before any layer changes), not those of the
	// processed layers before it: segments are then independent of each
	// other, and Workers may process them at once.
	NoPropagate bool
	// Workers, with NoPropagate, is the number of workers the segments
	// are dealt to: worker k of n takes the contiguous range Of(k, n) of
	// them and returns its Partial; the result does not depend on n.
	Workers int
	// Discard drops the values Process returns once their segment has
	// run (a method whose result is not those values: GPTQ's blocks).
	Discard bool
	// Done, when set, takes the values of a propagated walk (not
	// NoPropagate) as soon as no later segment reads them: after their
	// segment's last run. The walk then holds only the values of the
	// segment at hand (a model's pruned weights are written out as they
	// come, not held to the end) and returns the values Done did not
	// take. Done runs on the walk's goroutine between segments, so it
	// may write the values into the model walked.
	Done func(Partial) error
}

// Partial is what one worker changed: the new values of initializers, by
// name. The caller writes the partials into the model in worker order
// (the assemble step); the values of different workers never overlap.
type Partial map[string]*onnx.Tensor

// Stats is what a walk ran.
type Stats struct {
	// Segments is the number of segments; Runs the passes of a segment
	// over the calibration batches (per wave, to capture and to
	// propagate).
	Segments, Runs int
	// Seconds is the time spent running segments to capture and propagate
	// their outputs (not the waves', which Process accounts for).
	Seconds float64
}

// Of returns the segments [lo, hi) worker k of n processes.
func Of(k, n, segments int) (lo, hi int) {
	return k * segments / n, (k + 1) * segments / n
}

// Run walks the segments over the calibration batches (graph inputs),
// calls process for each wave of each segment's layers and returns one
// Partial per worker, in worker order.
func (w *Walk) Run(ctx context.Context, batches []Batch, process Process) ([]Partial, Stats, error) {
	st := Stats{Segments: len(w.Plan.Segments)}
	if !w.NoPropagate {
		p, runs, secs, err := w.sequential(ctx, batches, process)
		st.Runs, st.Seconds = runs, secs
		return []Partial{p}, st, err
	}
	t0 := time.Now()
	states, err := w.Capture(ctx, batches)
	if err != nil {
		return nil, st, err
	}
	st.Seconds = time.Since(t0).Seconds()
	st.Runs = len(states) - 1
	n := max(w.Workers, 1)
	parts := make([]Partial, n)
	runs := make([]int, n)
	err = feed.Parallel(ctx, n, n, func(k int) (Partial, error) {
		part := Partial{}
		lo, hi := Of(k, n, len(w.Plan.Segments))
		for i := lo; i < hi; i++ {
			r, err := w.Segment(ctx, i, states[i], process, part)
			runs[k] += r
			if err != nil {
				return nil, err
			}
			states[i] = nil // this segment's inputs are spent
			if w.Discard {
				clear(part)
			}
		}
		return part, nil
	}, func(k int, p Partial) error {
		parts[k] = p
		return nil
	})
	for _, r := range runs {
		st.Runs += r
	}
	return parts, st, err
}

// RunWorker is Run for worker k of Workers alone (one index of an
// Indexed Job of layer workers): it captures the inputs of its first
// segment by running the original segments before its range (the cost
// of not sharing one capture: index k runs k/Workers of the model's
// segments once more), processes its range and returns its Partial,
// the same one Run returns as parts[k].
func (w *Walk) RunWorker(ctx context.Context, batches []Batch, process Process, k int) (Partial, Stats, error) {
	st := Stats{Segments: len(w.Plan.Segments)}
	n := max(w.Workers, 1)
	if !w.NoPropagate || k < 0 || k >= n {
		return nil, st, fmt.Errorf("layer worker %d of %d: a worker alone needs independent segments (NoPropagate) and an index in [0, %d)", k, n, n)
	}
	lo, hi := Of(k, n, len(w.Plan.Segments))
	t0 := time.Now()
	state := batches
	for i := 0; i < lo; i++ {
		var err error
		if state, err = w.propagate(ctx, i, state, nil); err != nil {
			return nil, st, err
		}
		st.Runs++
	}
	st.Seconds = time.Since(t0).Seconds()
	part := Partial{}
	for i := lo; i < hi; i++ {
		r, err := w.Segment(ctx, i, state, process, part)
		st.Runs += r
		if err != nil {
			return nil, st, err
		}
		if i+1 < hi {
			t1 := time.Now()
			if state, err = w.propagate(ctx, i, state, nil); err != nil {
				return nil, st, err
			}
			st.Seconds += time.Since(t1).Seconds()
			st.Runs++
		}
		if w.Discard {
			clear(part)
		}
	}
	return part, st, nil
}

// sequential walks the segments in order, each from the outputs of the
// processed segment before it.
func (w *Walk) sequential(ctx context.Context, batches []Batch, process Process) (Partial, int, float64, error) {
	lastWithLayers := 0
	for i, s := range w.Plan.Segments {
		if len(s.Layers) > 0 {
			lastWithLayers = i
		}
	}
	lastRead := w.lastReads()
	part, runs, secs := Partial{}, 0, 0.0
	state := batches
	for i := range w.Plan.Segments {
		n, err := w.Segment(ctx, i, state, process, part)
		runs += n
		if err != nil {
			return nil, runs, secs, err
		}
		if i < lastWithLayers {
			t0 := time.Now()
			if state, err = w.propagate(ctx, i, state, part); err != nil {
				return nil, runs, secs, err
			}
			secs += time.Since(t0).Seconds()
			runs++
		}
		if err := w.handOver(part, lastRead, i); err != nil {
			return nil, runs, secs, err
		}
		if i == lastWithLayers {
			break
		}
		if w.Discard {
			clear(part)
		}
	}
	return part, runs, secs, nil
}

// lastReads maps each name the segments' nodes read to the last segment
// that reads it.
func (w *Walk) lastReads() map[string]int {
	last := map[string]int{}
	for i, s := range w.Plan.Segments {
		for _, n := range s.Nodes {
			for _, name := range onnx.Reads(n) {
				last[name] = i
			}
		}
	}
	return last
}

// handOver gives Done the values of part no segment after i reads,
// removing them from part.
func (w *Walk) handOver(part Partial, lastRead map[string]int, i int) error {
	if w.Done == nil {
		return nil
	}
	done := Partial{}
	for name, t := range part {
		if last, ok := lastRead[name]; !ok || last <= i {
			done[name] = t
			delete(part, name)
		}
	}
	if len(done) == 0 {
		return nil
	}
	return w.Done(done)
}

// Capture runs the model segment by segment without processing any
// layer and returns the inputs of every segment (the first's are
// batches).
func (w *Walk) Capture(ctx context.Context, batches []Batch) ([][]Batch, error) {
	states := [][]Batch{batches}
	for i := 0; i+1 < len(w.Plan.Segments); i++ {
		next, err := w.propagate(ctx, i, states[i], nil)
		if err != nil {
			return nil, err
		}
		states = append(states, next)
	}
	return states, nil
}

// Segment processes the waves of segment i's layers from its inputs
// state, adding the values they change to part, and returns the number
// of waves.
func (w *Walk) Segment(ctx context.Context, i int, state []Batch, process Process, part Partial) (int, error) {
	s := w.Plan.Segments[i]
	in := inputsOf(s, state)
	byWave := map[int][]int{}
	for _, l := range s.Layers {
		byWave[w.Wave[l]] = append(byWave[w.Wave[l]], l)
	}
	waves := make([]int, 0, len(byWave))
	for wave := range byWave {
		waves = append(waves, wave)
	}
	sort.Ints(waves)
	for _, wave := range waves {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		sub, err := w.sub(s, state, part)
		if err != nil {
			return 0, err
		}
		values, err := process(ctx, sub, in, byWave[wave])
		if err != nil {
			return 0, err
		}
		for name, t := range values {
			part[name] = t
		}
	}
	return len(waves), nil
}

// inputsOf keeps of each batch the tensors segment s reads.
func inputsOf(s Segment, state []Batch) []Batch {
	out := make([]Batch, len(state))
	for b, batch := range state {
		out[b] = Batch{}
		for _, name := range s.Inputs {
			out[b][name] = batch[name]
		}
	}
	return out
}

// sub is segment s as a model: its inputs declared as the graph declares
// them, or by the element type and rank of the first batch's values; its
// initializers named in values hold those instead of the model's.
func (w *Walk) sub(s Segment, state []Batch, values Partial) (*onnx.Model, error) {
	g := w.Model.Proto.GetGraph()
	inputs := make([]*onnxpb.ValueInfoProto, 0, len(s.Inputs))
	for _, name := range s.Inputs {
		if vi := onnx.FindValueInfo(g, name); vi != nil && vi.GetType() != nil {
			inputs = append(inputs, vi)
			continue
		}
		t := firstValue(state, name)
		inputs = append(inputs, onnx.ValueInfo(name, t.DType, make([]onnx.Dim, len(t.Dims))))
	}
	sub := w.Model.Extract(s.Nodes, inputs, s.Outputs)
	inits := sub.Proto.GetGraph().GetInitializer()
	for i, tp := range inits {
		if t := values[tp.GetName()]; t != nil {
			p, err := onnx.TensorToProto(t, tp.GetName())
			if err != nil {
				return nil, err
			}
			inits[i] = p // the slice is the sub-model's own
		}
	}
	// A weight held by a Constant node: the sub-model gets a node of its
	// own holding the new value (the plan's nodes are shared).
	nodes, copied := sub.Proto.GetGraph().GetNode(), false
	for i, n := range nodes {
		out := n.GetOutput()
		if n.GetOpType() != "Constant" || len(out) != 1 || values[out[0]] == nil {
			continue
		}
		p, err := onnx.TensorToProto(values[out[0]], "")
		if err != nil {
			return nil, err
		}
		if !copied {
			nodes, copied = append([]*onnxpb.NodeProto(nil), nodes...), true
			sub.Proto.GetGraph().Node = nodes
		}
		nodes[i] = onnx.NewNode("Constant", n.GetName(), nil, out, onnx.AttrTensor("value", p))
	}
	return sub, nil
}

// propagate runs segment i, with values in place of the model's
// initializers, on every batch of its inputs state and returns the next
// segment's inputs: the segment's live outputs, and the tensors that pass
// through it.
func (w *Walk) propagate(ctx context.Context, i int, state []Batch, values Partial) ([]Batch, error) {
	s := w.Plan.Segments[i]
	var outputs []string
	for _, name := range s.Live {
		if s.Produced[name] {
			outputs = append(outputs, name)
		}
	}
	in := inputsOf(s, state)
	next := make([]Batch, len(state))
	for b := range state {
		next[b] = Batch{}
		for _, name := range s.Live {
			if !s.Produced[name] {
				next[b][name] = state[b][name]
			}
		}
	}
	if len(outputs) == 0 {
		return next, nil
	}
	sub, err := w.sub(s, state, values)
	if err != nil {
		return nil, err
	}
	shards, mine := max(w.Shards, 1), w.mine()
	err = feed.Parallel(ctx, len(mine), len(mine), func(j int) ([]Batch, error) {
		lo, hi := shard.Samples(mine[j], shards, len(in))
		if lo == hi {
			return nil, nil
		}
		sess, err := feed.Open(sub, feed.Options{Name: fmt.Sprintf("%s (segment %d of %d)", w.Model.Name, i+1, len(w.Plan.Segments))})
		if err != nil {
			return nil, err
		}
		defer sess.Close()
		outs := make([]Batch, hi-lo)
		for b := lo; b < hi; b++ {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if outs[b-lo], err = sess.Run(in[b]); err != nil {
				return nil, fmt.Errorf("segment %d of %d, batch %d: %w", i+1, len(w.Plan.Segments), b+1, err)
			}
		}
		return outs, nil
	}, func(j int, outs []Batch) error {
		lo, _ := shard.Samples(mine[j], shards, len(in))
		for j, o := range outs {
			for _, name := range outputs {
				next[lo+j][name] = o[name]
			}
		}
		return nil
	})
	return next, err
}

// mine is the shards whose batches this process runs.
func (w *Walk) mine() []int {
	if w.Mine != nil {
		return w.Mine
	}
	all := make([]int, max(w.Shards, 1))
	for k := range all {
		all[k] = k
	}
	return all
}

// firstValue is name's value in the first batch that holds it (a batch
// of another pod's shard holds no segment outputs).
func firstValue(state []Batch, name string) *onnx.Tensor {
	for _, b := range state {
		if t := b[name]; t != nil {
			return t
		}
	}
	return nil
}
