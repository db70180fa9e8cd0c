package quantize

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
)

// The tensors of a weight in a layer pod's partial: its blocks as
// DequantizeLinear takes them ([rows, cols] codes of the block type,
// [rows, blocks] scales and zero points), named after the weight.
const (
	podCodes      = "/codes"
	podScales     = "/scales"
	podZeroPoints = "/zero_points"
)

// podWalk is GPTQ on one index of an Indexed Job of layer workers
// (spec.parallelism.layers on a cluster): the index rounds its range of
// blocks (layerwise.Walk.RunWorker) and hands index 0 its partial, the
// rounded blocks of its weights. Index 0 puts every index's blocks in
// g.blocks, as the in-process workers leave them, so the model is the
// one layers: 1 writes; the other indices return layerwise.ErrHandedOver.
// layers are the weights GPTQ rounds, typeOf their block type.
func (g *gptqHessians) podWalk(ctx context.Context, w *layerwise.Walk, batches []layerwise.Batch, process layerwise.Process, layers []weightSlot, o *options, typeOf func(weightSlot) *QType) error {
	x := o.calib.LayerPod
	byName := map[string]weightSlot{}
	for _, s := range layers {
		byName[s.weight.name] = s
	}
	err := layerwise.HandOver(ctx, x, func() ([]byte, error) {
		_, st, err := w.RunWorker(ctx, batches, process, x.Index)
		if err != nil {
			return nil, fmt.Errorf("gptq: %w", err)
		}
		if x.Log != nil {
			lo, hi := layerwise.Of(x.Index, x.Of, len(w.Plan.Segments))
			x.Log.Info("layer index rounded its blocks", "index", x.Index, "of", x.Of, "segments", fmt.Sprintf("[%d, %d) of %d", lo, hi, len(w.Plan.Segments)),
				"weights", len(g.blocks), "captureSeconds", st.Seconds)
		}
		b, err := g.encodePod()
		clear(g.blocks) // index 0 takes its own back from the bytes, as every index's
		return b, err
	}, func(b []byte) error {
		return g.decodePod(b, byName, o.blockSize, typeOf)
	})
	if err != nil {
		return err
	}
	for _, s := range layers {
		if g.blocks[s.weight.name] == nil {
			return fmt.Errorf("gptq: weight %q: no layer index rounded it", s.weight.name)
		}
	}
	return nil
}

// encodePod writes the blocks this index rounded canonically (a retry
// must write the same bytes): per weight by name its block size, then
// every weight's tensors (podCodes, podScales, podZeroPoints).
func (g *gptqHessians) encodePod() ([]byte, error) {
	var w exchange.Writer
	part := layerwise.Partial{}
	names := slices.Sorted(maps.Keys(g.blocks))
	w.Int(int64(len(names)))
	for _, name := range names {
		b := g.blocks[name]
		w.String(name)
		w.Int(int64(b.blockSize))
		q := b.quantized([]int64{int64(b.rows), int64(b.cols)}, 1)
		part[name+podCodes], part[name+podScales], part[name+podZeroPoints] = q.tensor(), q.scaleTensor(), q.zeroPointTensor()
	}
	if err := layerwise.WriteTensors(&w, part); err != nil {
		return nil, err
	}
	return w.Bytes(), nil
}

// decodePod reads the blocks a partial holds into g.blocks, refusing a
// weight the model's GPTQ does not round (byName), one another partial
// already held, or blocks of another type, size or shape than this
// index would round it to.
func (g *gptqHessians) decodePod(b []byte, byName map[string]weightSlot, blockSize int, typeOf func(weightSlot) *QType) error {
	r := exchange.NewReader(b)
	sizes := map[string]int{}
	var names []string
	for n := r.Len(16); n > 0; n-- {
		name := r.String()
		sizes[name] = int(r.Int())
		names = append(names, name)
	}
	part, err := layerwise.ReadTensors(r)
	if err != nil {
		return err
	}
	if len(part) != 3*len(names) {
		return fmt.Errorf("%d tensors for %d weights, want 3 each", len(part), len(names))
	}
	for _, name := range names {
		s, ok := byName[name]
		if !ok {
			return fmt.Errorf("weight %q: not one this model's GPTQ rounds", name)
		}
		if g.blocks[name] != nil {
			return fmt.Errorf("weight %q: rounded by two layer indices", name)
		}
		blk, err := blocksOf(part[name+podCodes], part[name+podScales], part[name+podZeroPoints], sizes[name])
		if err != nil {
			return fmt.Errorf("weight %q: %w", name, err)
		}
		t, dims := *typeOf(s), s.weight.dims()
		_, in, _ := s.layer.WeightAxes(len(dims))
		if blk.t != t || blk.blockSize != blockSize || blk.cols != int(dims[in]) || blk.rows != int(dims[1-in]) {
			return fmt.Errorf("weight %q: %s blocks of %d over %d×%d, this model's GPTQ rounds it to %s blocks of %d over %d×%d",
				name, blk.t, blk.blockSize, blk.rows, blk.cols, t, blockSize, dims[1-in], dims[in])
		}
		g.blocks[name] = blk
	}
	return nil
}

// blocksOf is the inverse of gptqBlocks.quantized for a [rows, cols]
// weight (blocks along axis 1): the codes, scales and zero points back
// as blocks of blockSize features.
func blocksOf(codes, scales, zeros *onnx.Tensor, blockSize int) (*gptqBlocks, error) {
	if codes == nil || scales == nil || zeros == nil {
		return nil, fmt.Errorf("codes, scales or zero points missing")
	}
	if len(codes.Dims) != 2 || blockSize <= 0 {
		return nil, fmt.Errorf("codes of shape %v in blocks of %d: want 2-D codes and a positive block size", codes.Dims, blockSize)
	}
	rows, cols := int(codes.Dims[0]), int(codes.Dims[1])
	nb := (cols + blockSize - 1) / blockSize
	t, cs, err := codesOf(codes)
	if err != nil {
		return nil, err
	}
	zt, zs, err := codesOf(zeros)
	if err != nil {
		return nil, fmt.Errorf("zero points: %w", err)
	}
	sv, ok := scales.Data.([]float32)
	if !ok || zt != t || !slices.Equal(scales.Dims, []int64{int64(rows), int64(nb)}) || !slices.Equal(zeros.Dims, scales.Dims) {
		return nil, fmt.Errorf("scales %v %v and zero points %v %v for %s codes %v in blocks of %d: want float32 scales and %s zero points, both [%d %d]",
			scales.DType, scales.Dims, zeros.DType, zeros.Dims, t, codes.Dims, blockSize, t, rows, nb)
	}
	params := make([]Params, len(sv))
	for i := range params {
		params[i] = Params{Scale: sv[i], ZeroPoint: zs[i]}
	}
	qmin, _ := t.Range()
	offsets := make([]byte, len(cs))
	for i, c := range cs {
		offsets[i] = byte(c - qmin) // as gptq keeps them
	}
	return &gptqBlocks{rows: rows, cols: cols, blockSize: blockSize, nb: nb, t: t, codes: offsets, params: params}, nil
}

// codesOf reads a tensor of one of the block types as codes.
func codesOf(c *onnx.Tensor) (QType, []int32, error) {
	var t QType
	switch c.DType {
	case onnx.Int4:
		t = Int4
	case onnx.Int8:
		t = Int8
	case onnx.Uint4:
		t = UInt4
	case onnx.Uint8:
		t = UInt8
	default:
		return 0, nil, fmt.Errorf("codes of type %v: want int4, uint4, int8 or uint8", c.DType)
	}
	switch d := c.Data.(type) {
	case []int8:
		return t, widen(d), nil
	case []uint8:
		return t, widen(d), nil
	}
	return 0, nil, fmt.Errorf("codes of type %v hold %T", c.DType, c.Data)
}

func widen[T int8 | uint8](v []T) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}
