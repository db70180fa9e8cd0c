package prune

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// calibratable says why hessian pruning cannot collect a target's inputs,
// or "" when it can: its nodes must be in the main graph, read a tensor
// the model computes (or a graph input) and be 1-D or 2-D when they are
// convolutions.
func calibratable(t *target, main *onnx.GraphIndex) string {
	for _, u := range t.uses {
		if u.graph != "" {
			return fmt.Sprintf("%s is inside subgraph %s", onnx.Label(u.node), u.graph)
		}
		if l, _ := onnx.LayerOf(u.node); l.Kind == onnx.LayerRecurrent {
			return fmt.Sprintf("%s is a recurrent layer: hessian pruning calibrates Conv, ConvTranspose, Gemm and MatMul (magnitude and nm prune %s)", onnx.Label(u.node), u.node.GetOpType())
		}
		in := u.node.GetInput()[0]
		computed := main.Producer[in] != nil || main.Input[in] != nil
		if !computed || main.Initializer[in] != nil {
			return fmt.Sprintf("%s input %q is a constant", onnx.Label(u.node), in)
		}
		if k := len(t.lay.kernel); (u.node.GetOpType() == "Conv") && (k < 1 || k > 2) {
			return fmt.Sprintf("%s is a %d-D convolution (1-D and 2-D are supported)", onnx.Label(u.node), k)
		}
	}
	return ""
}

// hessian prunes every target with SparseGPT in waves: a wave is the
// layers whose inputs depend only on layers pruned in earlier waves, so
// each layer is calibrated on the outputs of the already pruned layers
// before it, as SparseGPT prunes sequentially. Where the graph can be cut
// into blocks (runner/layerwise) the waves run block by block, on the
// captured inputs of each block; elsewhere each wave is one pass of the
// whole model over the calibration set with the wave's inputs exposed as
// outputs. out is the model being pruned. Each target's values are read
// when its wave solves it and held once, until they are written into the
// model (assemble): block by block, once the last block that reads them
// is done, and in a streamed model into its scratch file, so the model's
// weights are held a block at a time.
func hessian(ctx context.Context, out *onnx.Model, targets []*target, o *options, calib Calibration, progress func(done int)) ([]hessianLayer, *HessianStats, error) {
	start := time.Now()
	set, err := readCalibration(out, calib, o.samples)
	if err != nil {
		return nil, nil, err
	}
	x := o.exchange
	if x == nil {
		x = exchange.Local(o.shards)
	}
	stats := &HessianStats{Samples: set.samples}
	p := &hessianPass{o: o, out: out, targets: targets, biases: findBiases(out, targets), exchange: x,
		layers: make([]hessianLayer, len(targets)), stats: stats, progress: progress}
	nodes := make([][]*onnxpb.NodeProto, len(targets))
	for i, t := range targets {
		for _, u := range t.uses {
			nodes[i] = append(nodes[i], u.node)
		}
	}
	wave := layerwise.Waves(out.Proto.GetGraph(), nodes)
	plan, why := cutBlocks(out.Proto.GetGraph(), nodes)
	if plan != nil {
		// An index of an Indexed Job of data shards propagates only its
		// own shards' batches: collect reads no other.
		w := &layerwise.Walk{Model: out, Plan: plan, Wave: wave, Shards: o.shards, Mine: x.Mine(), NoPropagate: o.originalInputs, Workers: o.layers,
			Done: func(part layerwise.Partial) error { return p.assemble([]layerwise.Partial{part}) }}
		process := func(ctx context.Context, sub *onnx.Model, batches []layerwise.Batch, ids []int) (map[string]*onnx.Tensor, error) {
			return p.wave(ctx, sub, &calibSet{batches: batches, samples: set.samples}, ids)
		}
		stats.Blocks = len(plan.Segments)
		if o.pod != nil {
			if stats.Passes, err = p.podWalk(ctx, w, set.batches, process); err != nil {
				return nil, nil, err
			}
		} else {
			parts, ws, err := w.Run(ctx, set.batches, process)
			if err != nil {
				return nil, nil, err
			}
			if err := p.assemble(parts); err != nil {
				return nil, nil, err
			}
			stats.Passes = ws.Runs
			stats.CalibrationSeconds += ws.Seconds
		}
	} else if o.pod != nil && o.pod.Index != 0 {
		// No blocks to deal: index 0 prunes the whole model alone.
		return nil, nil, layerwise.ErrHandedOver
	} else {
		stats.WholeModel = "whole model per wave: " + why
		last := 0
		for _, w := range wave {
			last = max(last, w)
		}
		for w := 0; w <= last; w++ {
			var ids []int
			for i := range targets {
				if wave[i] == w {
					ids = append(ids, i)
				}
			}
			if len(ids) == 0 {
				continue
			}
			values, err := p.wave(ctx, out, set, ids)
			if err != nil {
				return nil, nil, err
			}
			if err := p.assemble([]layerwise.Partial{values}); err != nil {
				return nil, nil, err
			}
			stats.Passes++
		}
	}
	total := time.Since(start).Seconds()
	params := 0
	for _, t := range targets {
		params += t.w.NumElements()
	}
	stats.SecondsPerMParams = total / (float64(params) / 1e6)
	stats.SecondsPerSample = total / float64(set.samples)
	return p.layers, stats, nil
}

// cutBlocks finds the blocks hessian pruning walks (tests compare it
// with the whole-model path by replacing it).
var cutBlocks = layerwise.Cut

// hessianPass is the state of hessian pruning across its waves. Waves of
// different blocks may run at once (spec.parallelism.layers): they share
// only what mu guards.
type hessianPass struct {
	o        *options
	out      *onnx.Model
	targets  []*target
	biases   []*onnx.Weight
	exchange exchange.Exchange
	layers   []hessianLayer
	progress func(done int)

	mu    sync.Mutex
	stats *HessianStats
	done  int
}

// wave calibrates the targets ids on m (the model pruned, or the block
// that holds them) over set, prunes them and returns their new values
// (weights and biases) by name; the model is not changed.
func (p *hessianPass) wave(ctx context.Context, m *onnx.Model, set *calibSet, ids []int) (layerwise.Partial, error) {
	t0 := time.Now()
	// The round is named by the wave's first target: unique in the run,
	// the same in every index of an Indexed Job.
	accs, err := collect(ctx, m, p.targets, p.biases, ids, set, p.exchange, fmt.Sprintf("hessian-wave-%d", ids[0]))
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	p.mu.Lock()
	p.stats.CalibrationSeconds += t1.Sub(t0).Seconds()
	p.mu.Unlock()
	values := layerwise.Partial{}
	for _, i := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := p.targets[i]
		var bias []float32
		if b := p.biases[i]; b != nil {
			if bias, err = b.Float32s(); err != nil {
				return nil, fmt.Errorf("bias %q: %w", b.Name, err)
			}
		}
		// The weight as the model holds it: no wave before changed it.
		vals, err := t.w.Float32s()
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", t.w.Name, err)
		}
		l := &p.layers[i]
		l.rows, l.features = accs[i].rows, accs[i].cols
		l.loss, l.refit, err = solve(t.lay, vals, bias, accs[i].hessians(), p.o)
		if err != nil {
			return nil, fmt.Errorf("weight %q (%s): %w", t.w.Name, t.nodeName(), err)
		}
		if bias != nil {
			b := p.biases[i]
			if values[b.Name], err = onnx.FromFloat32s(b.DType, b.Dims, bias); err != nil {
				return nil, fmt.Errorf("bias %q: %w", b.Name, err)
			}
			l.bias = b.Name
		}
		accs[i] = nil // the Hessian can be large: free it now
		l.mask = hessianDescription(p.o, t.lay, l.refit)
		var zeros int
		l.maskDigest, zeros = zeroPattern(t.w.Dims, vals)
		l.params, l.zeros = int64(len(vals)), int64(zeros)
		if values[t.w.Name], err = weightTensor(t.w, vals); err != nil {
			return nil, fmt.Errorf("weight %q: %w", t.w.Name, err)
		}
		p.mu.Lock()
		p.done++
		p.progress(p.done)
		p.mu.Unlock()
	}
	p.mu.Lock()
	p.stats.SolveSeconds += time.Since(t1).Seconds()
	p.mu.Unlock()
	return values, nil
}

// weightTensor is a weight's new values in its element type; float32
// values are taken as they are, not copied.
func weightTensor(w *onnx.Weight, vals []float32) (*onnx.Tensor, error) {
	if w.DType == onnx.Float {
		return onnx.NewTensor(w.Dims, vals), nil
	}
	return onnx.FromFloat32s(w.DType, w.Dims, vals)
}

// assemble writes the pruned weights and biases into the model, part by
// part in order, each part's names sorted. Each value is dropped from
// its part once written: the model holds it now, in its scratch file
// when it is streamed (onnx.Model.Spill), so a walk that hands each
// block's weights over as they are final (layerwise.Walk.Done) does not
// hold them all until the model is written.
func (p *hessianPass) assemble(parts []layerwise.Partial) error {
	weights := map[string]*onnx.Weight{}
	for i, t := range p.targets {
		weights[t.w.Name] = t.w
		if b := p.biases[i]; b != nil {
			weights[b.Name] = b
		}
	}
	for _, part := range parts {
		for _, name := range slices.Sorted(maps.Keys(part)) {
			w := weights[name]
			if w == nil {
				return fmt.Errorf("hessian pruning changed %q, which is no weight it prunes", name)
			}
			if err := p.out.Spill(w, part[name]); err != nil {
				return err
			}
			delete(part, name)
		}
	}
	return nil
}

// hessianLayer is what hessian pruning did to one weight.
type hessianLayer struct {
	mask string
	loss float64
	// rows of X and features (columns, the bias included) H was built
	// from; refit when the kept weights were re-solved exactly; bias the
	// bias updated with the weight.
	rows     int64
	features int
	refit    bool
	bias     string
	// params, zeros and maskDigest describe the pruned weight (zeroPattern).
	params, zeros int64
	maskDigest    string
}

// collect runs the calibration set through the model with the inputs of
// the chosen targets' nodes exposed and accumulates each target's XᵀX.
// The batches are cut into shard.Units units; each unit's XᵀX is
// accumulated on its own, in batch order, and units are combined by
// shard.TreeSum. Each shard of x takes an aligned subtree of units on a
// session of its own, and exchange.Reduce combines their sums (shared as
// round) by the same tree, so H is bit-identical for every shard count,
// whether the shards are workers of this process or pods.
func collect(ctx context.Context, m *onnx.Model, targets []*target, biases []*onnx.Weight, ids []int, set *calibSet, x exchange.Exchange, round string) (map[int]*hessianAcc, error) {
	main := onnx.IndexGraph(m.Proto.GetGraph(), "")
	var expose []string
	seen := map[string]bool{}
	for _, i := range ids {
		for _, u := range targets[i].uses {
			in := u.node.GetInput()[0]
			if main.Input[in] == nil && !seen[in] {
				expose = append(expose, in)
				seen[in] = true
			}
		}
	}
	shards := x.Shards()
	part := func(s int) (map[int]*hessianAcc, error) {
		lo, hi := shard.OfUnits(s, shards)
		if b, _ := shard.UnitSamples(lo, len(set.batches)); b == len(set.batches) {
			return nil, nil // fewer batches than shards: nothing for this one
		}
		// With nothing to expose, every input is a graph input.
		sess, err := feed.Open(m, feed.Options{Name: m.Name + " (hessian calibration)", Expose: expose})
		if err != nil {
			return nil, err
		}
		defer sess.Close()
		return shard.TreeSum(hi-lo, func(k int) (map[int]*hessianAcc, error) {
			return collectUnit(ctx, sess, targets, biases, ids, set, lo+k)
		}, mergeAccs)
	}
	return exchange.Reduce(ctx, x, round, accCodec(targets, biases), part, mergeAccs)
}

// collectUnit accumulates the XᵀX of unit u of the calibration batches;
// nil for a unit with no batch.
func collectUnit(ctx context.Context, sess *feed.Session, targets []*target, biases []*onnx.Weight, ids []int, set *calibSet, u int) (map[int]*hessianAcc, error) {
	lo, hi := shard.UnitSamples(u, len(set.batches))
	if lo == hi {
		return nil, nil
	}
	accs := map[int]*hessianAcc{}
	for _, i := range ids {
		accs[i] = newHessianAcc(targets[i].lay, biases[i] != nil)
	}
	for b := lo; b < hi; b++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch := set.batches[b]
		outs, err := sess.Run(batch)
		if err != nil {
			return nil, fmt.Errorf("%w: batch %d: %v", ErrCalibration, b+1, err)
		}
		for _, i := range ids {
			for _, u := range targets[i].uses {
				in := u.node.GetInput()[0]
				x := outs[in]
				if x == nil {
					x = batch[in]
				}
				if err := accs[i].add(u.node, x); err != nil {
					return nil, fmt.Errorf("weight %q: %s input %q: %w", targets[i].w.Name, onnx.Label(u.node), in, err)
				}
			}
		}
	}
	for _, a := range accs {
		a.buf = nil // its rows are flushed: free the gathering buffer
	}
	return accs, nil
}

// mergeAccs adds b's XᵀX to a's, target by target (nil is an empty sum).
func mergeAccs(a, b map[int]*hessianAcc) map[int]*hessianAcc {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	for i, x := range a {
		x.merge(b[i])
	}
	return a
}

// findBiases returns the bias hessian pruning updates with each target
// (nil where there is none).
func findBiases(m *onnx.Model, targets []*target) []*onnx.Weight {
	main := onnx.IndexGraph(m.Proto.GetGraph(), "")
	weights := map[string]*onnx.Weight{}
	for _, w := range m.Weights() {
		weights[w.Name] = w
	}
	out := make([]*onnx.Weight, len(targets))
	for i, t := range targets {
		out[i] = findBias(main, weights, t)
	}
	return out
}

// solve runs SparseGPT on each group's matrix of a weight (with the bias,
// one value per row, as a last column when there is one) and writes the
// result back into vals and bias. It returns the summed loss and whether
// every group's kept weights were re-solved exactly.
func solve(l *layout, vals, bias []float32, hs [][]float64, o *options) (float64, bool, error) {
	var starts []int
	if o.structured() {
		starts, _ = l.nmGroups(o.m)
	}
	cols, fixed := l.cols, 0
	if bias != nil {
		cols, fixed = l.cols+1, 1
	}
	var loss float64
	refit := true
	for g := 0; g < l.groups; g++ {
		w := make([]float64, l.rows*cols)
		for r := 0; r < l.rows; r++ {
			for c := 0; c < l.cols; c++ {
				w[r*cols+c] = float64(vals[l.at(g, r, c)])
			}
			if bias != nil {
				w[r*cols+l.cols] = float64(bias[g*l.rows+r])
			}
		}
		s := &sweep{rows: l.rows, cols: cols, w: w, h: hs[g], sparsity: o.sparsity, n: o.n, m: o.m,
			starts: starts, fixed: fixed, damp: o.dampening, seed: o.seed + int64(g), block: blockSize,
			refitBudget: refitBudget}
		gl, err := sparseGPT(s)
		if err != nil {
			return 0, false, err
		}
		loss += gl
		refit = refit && s.refitted
		for r := 0; r < l.rows; r++ {
			for c := 0; c < l.cols; c++ {
				vals[l.at(g, r, c)] = float32(w[r*cols+c])
			}
			if bias != nil {
				bias[g*l.rows+r] = float32(w[r*cols+l.cols])
			}
		}
	}
	return loss, refit, nil
}

func hessianDescription(o *options, l *layout, refit bool) string {
	how := "remaining weights updated"
	if refit {
		how = "remaining weights re-solved exactly"
	}
	if o.structured() {
		_, rest := l.nmGroups(o.m)
		return fmt.Sprintf("hessian (SparseGPT), %s: %s", how, nmDescription(o, l, rest))
	}
	return fmt.Sprintf("hessian (SparseGPT), %s: unstructured, %.4g%% of each block of %d input columns by w²/[H⁻¹]ᵢᵢ", how, 100*o.sparsity, blockSize)
}

// setValues writes float32 values into a weight in its own element type.
func setValues(w *onnx.Weight, vals []float32) error {
	t, err := onnx.FromFloat32s(w.DType, w.Dims, vals)
	if err != nil {
		return fmt.Errorf("weight %q: %w", w.Name, err)
	}
	return w.Set(t)
}
