package quantize

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kompress/kompress/runner/exchange"
	hess "github.com/kompress/kompress/runner/hessian"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// gptqHessiansOf rounds the weights GPTQ takes block by block where the
// model can be cut into blocks, or else collects every Hessian from one
// pass of the float model, and says which in the report's warnings when
// it cannot. kept are the weights the 4-bit guard keeps at 8 bits.
func gptqHessiansOf(ctx context.Context, m *onnx.Model, ix *index, slots []weightSlot, o *options, calib Calibration, kept map[string]bool, r *Report) (*gptqHessians, error) {
	typeOf := func(s weightSlot) *QType {
		bits := o.bits
		if kept[s.weight.name] {
			if o.sensitive == SensitiveFloat {
				return nil
			}
			bits = 8
		}
		if bits == 4 && int(s.weight.dims()[inputAxis(s)]) < minBlockRow {
			return nil
		}
		t := o.blockType(bits)
		if o.format == MatMulNBits && !embedding(s) {
			t = nbitsType(bits, o.symmetric)
		}
		return &t
	}
	gq, why, err := gptqByBlocks(ctx, m, ix, slots, o, calib, typeOf)
	if err != nil || gq != nil {
		return gq, err
	}
	if x := o.calib.LayerPod; x != nil && x.Index != 0 {
		// No blocks to deal: index 0 rounds the whole model alone.
		return nil, layerwise.ErrHandedOver
	}
	r.Warnings = append(r.Warnings, "gptq calibrated every layer on the float model in one pass, not block by block: "+why)
	return collectHessians(ctx, m, ix, slots, o, calib)
}

// inputAxis is the input-feature axis of a slot's weight.
func inputAxis(s weightSlot) int {
	_, in, _ := s.layer.WeightAxes(len(s.weight.dims()))
	return in
}

// gptqByBlocks rounds every weight GPTQ takes block by block
// (runner/layerwise): each block's layers are calibrated, wave by wave,
// on the inputs the already rounded layers before them give, as gptq.py
// quantizes a transformer layer by layer, and the block is run once more
// with its rounded weights to give the next block its inputs. Only one
// block's Hessians are held at a time; on a layer pod
// (CalibrationOptions.LayerPod) only the pod's own range of blocks
// (podWalk). typeOf is the type a slot is
// rounded to (nil: the slot is not rounded, it stays in float). It
// returns nil and why when the model has no cut between its layers (the
// caller calibrates the whole float model once, collectHessians).
func gptqByBlocks(ctx context.Context, m *onnx.Model, ix *index, slots []weightSlot, o *options, calib Calibration, typeOf func(weightSlot) *QType) (*gptqHessians, string, error) {
	var layers []weightSlot
	seen := map[string]bool{}
	for _, s := range slots {
		if gptqInput(ix, s) == "" || typeOf(s) == nil {
			continue
		}
		if seen[s.weight.name] {
			return nil, fmt.Sprintf("weight %q is read by several nodes", s.weight.name), nil
		}
		seen[s.weight.name] = true
		layers = append(layers, s)
	}
	nodes := make([][]*onnxpb.NodeProto, len(layers))
	for i, s := range layers {
		nodes[i] = []*onnxpb.NodeProto{s.node}
	}
	g := m.Proto.GetGraph()
	plan, why := cutBlocks(g, nodes)
	if plan == nil {
		return nil, why, nil
	}
	batches, _, err := readBatches(m, calib, o.calib.Samples)
	if err != nil {
		return nil, "", fmt.Errorf("gptq: %w", err)
	}
	gq := &gptqHessians{damp: o.damp, blocks: map[string]*gptqBlocks{}}
	w := &layerwise.Walk{Model: m, Plan: plan, Wave: layerwise.Waves(g, nodes), Shards: o.calib.Shards,
		NoPropagate: o.calib.OriginalLayerInputs, Workers: o.calib.Layers, Discard: true}
	process := func(ctx context.Context, sub *onnx.Model, batches []layerwise.Batch, ids []int) (map[string]*onnx.Tensor, error) {
		return gq.roundWave(ctx, sub, batches, layers, ids, o, typeOf)
	}
	if o.calib.LayerPod != nil {
		if err := gq.podWalk(ctx, w, batches, process, layers, o, typeOf); err != nil {
			return nil, "", err
		}
		return gq, "", nil
	}
	if _, _, err = w.Run(ctx, batches, process); err != nil {
		return nil, "", fmt.Errorf("gptq: %w", err)
	}
	return gq, "", nil
}

// roundWave accumulates the Hessians of the wave's layers on sub over
// batches, rounds their weights with GPTQ, keeps the blocks for the
// model's rewrite and returns what the blocks dequantize to, for the runs
// of the block that follow. Waves of different blocks may run at once
// (spec.parallelism.layers): g.mu guards the blocks.
func (g *gptqHessians) roundWave(ctx context.Context, sub *onnx.Model, batches []map[string]*onnx.Tensor, layers []weightSlot, ids []int, o *options, typeOf func(weightSlot) *QType) (map[string]*onnx.Tensor, error) {
	values := map[string]*onnx.Tensor{}
	cols := map[string]int{}
	var xs []string
	for _, i := range ids {
		s := layers[i]
		x := input(s.node, 0)
		if _, ok := cols[x]; !ok {
			_, in, _ := s.layer.WeightAxes(2)
			cols[x] = int(s.weight.dims()[in])
			xs = append(xs, x)
		}
	}
	part := func() hessianPart {
		p := hessianPart{}
		for x, c := range cols {
			p[x] = hess.NewAcc(c)
		}
		return p
	}
	// GPTQ's Hessians are shared in this process only (as the one-pass
	// path's are): an index of an Indexed Job computes every shard.
	round := fmt.Sprintf("gptq-wave-%s", layers[ids[0]].weight.name)
	sums, err := reduceShards(ctx, sub, xs, batches, exchange.Local(o.calib.Shards), round, part, hessianCodec, mergeHessians)
	if err != nil {
		return nil, err
	}
	hs := map[string][]float64{}
	for _, x := range xs {
		hs[x] = sums[x].Hessian()
	}
	users := map[string]int{}
	for _, i := range ids {
		users[input(layers[i].node, 0)]++
	}
	for _, i := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		s := layers[i]
		x := input(s.node, 0)
		h := hs[x]
		if users[x]--; users[x] > 0 {
			h = append([]float64(nil), h...) // gptq consumes its copy
		}
		data, err := floatData(s.weight)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
		}
		dims := s.weight.dims()
		_, in, _ := s.layer.WeightAxes(len(dims))
		mx, err := gptqMatrixOf(data, dims, in)
		if err != nil {
			return nil, err
		}
		b, err := gptq(mx, h, g.damp, o.blockSize, *typeOf(s), o.symmetric)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
		}
		g.mu.Lock()
		g.blocks[s.weight.name] = b
		g.mu.Unlock()
		values[s.weight.name] = onnx.NewTensor(append([]int64(nil), dims...), b.dequantized(in))
	}
	return values, nil
}

// cutBlocks finds the blocks GPTQ walks (tests compare it with the
// whole-model path by replacing it).
var cutBlocks = layerwise.Cut

// hessianPart is the XᵀX of some units of the calibration batches, per
// input tensor.
type hessianPart map[string]*hess.Acc

func (p hessianPart) collect(name string, data []float32) { p[name].Add(data) }

// hessianCodec encodes a hessianPart: per tensor, in name order, its
// name, features, rows and upper-triangle sum.
var hessianCodec = exchange.Codec[hessianPart]{
	Encode: func(p hessianPart) []byte {
		var w exchange.Writer
		w.Int(int64(len(p)))
		for _, x := range slices.Sorted(maps.Keys(p)) {
			h, rows := p[x].Sum()
			w.String(x)
			w.Int(int64(p[x].Cols()))
			w.Int(rows)
			w.Float64s(h)
		}
		return w.Bytes()
	},
	Decode: func(b []byte) (hessianPart, error) {
		r := exchange.NewReader(b)
		n := r.Len(8)
		p := make(hessianPart, n)
		for range n {
			x, cols, rows := r.String(), int(r.Int()), r.Int()
			h := r.Float64s()
			if cols < 0 || len(h) != cols*cols || p[x] != nil {
				return nil, fmt.Errorf("tensor %q: %d values for %d features, or it comes twice", x, len(h), cols)
			}
			p[x] = hess.AccOf(cols, h, rows)
		}
		return p, r.Err()
	},
}

func mergeHessians(a, b hessianPart) hessianPart {
	if a == nil {
		return b
	}
	for x, acc := range a {
		a[x] = hess.Merge(acc, b[x])
	}
	return a
}

// dequantized is the float weight the blocks stand for, laid out as the
// 2-D weight they came from (input features along axis in).
func (g *gptqBlocks) dequantized(in int) []float32 {
	out := make([]float32, g.rows*g.cols)
	for r := range g.rows {
		for c := range g.cols {
			v := g.params[r*g.nb+c/g.blockSize].Dequantize(g.code(r*g.cols + c))
			if in == 0 {
				out[c*g.rows+r] = v // [K, N]
			} else {
				out[r*g.cols+c] = v // [N, K]
			}
		}
	}
	return out
}
