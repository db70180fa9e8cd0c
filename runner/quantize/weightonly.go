package quantize

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Weight-only quantization stores weights as int4 or int8 in blocks of
// blockSize along the input dimension and computes in float:
//
//	qdq:         DequantizeLinear(axis, block_size) at opset 21 feeding the
//	             node (ONNX Runtime fuses it with MatMul into MatMulNBits),
//	             for operators whose registry entry says blocked; blocks
//	             run along the operator table's input-channel axis; a
//	             convolution weight [M, C/g, k...] is blocked as the matrix
//	             [M, C/g*k...] (ConvTranspose: [C, M/g*k...], blocks along
//	             C) and reshaped back, so depthwise and 1x1 kernels still
//	             get full blocks
//	matmulnbits: com.microsoft MatMulNBits, for operators whose registry
//	             entry has an nbits form (MatMul and Gemm); the others
//	             stay in float (the operator is a matrix product).

// msDomain is ONNX Runtime's contrib operator domain.
const msDomain = "com.microsoft"

func quantizeWeightOnly(ctx context.Context, m *onnx.Model, o *options, data Calibration, r *Report) error {
	calib := func() Calibration { return data }
	if o.format == QDQ {
		if err := ensureOpset(m, opsetBlocked); err != nil {
			return err
		}
	}
	ix := newIndex(m)
	slots := weightSlots(ix, o, r, map[string]bool{})
	gptq := o.algorithm == GPTQ && len(slots) > 0
	if gptq {
		if data == nil {
			return errGPTQData
		}
		var err error
		if calib, err = replayable(m, data, o.calib.Samples); err != nil {
			return err
		}
	}
	kept := map[string]bool{}
	if o.bits == 4 && o.sensitive != SensitiveInt4 && len(slots) > 0 {
		var err error
		if kept, err = guardLowBit(ctx, m, slots, o, calib(), r); err != nil {
			return err
		}
	}
	var gq *gptqHessians
	if gptq {
		var err error
		if gq, err = gptqHessiansOf(ctx, m, ix, slots, o, calib(), kept, r); err != nil {
			return err
		}
	}
	e := newEditor(ix, r.own)
	done := 0
	left := pendingReaders(slots)
	// The next weights are read while this one is quantized.
	pf := prefetch(slots, func(s weightSlot) bool { return streamed(o, s, gq != nil, slotBits(o, s, kept)) })
	defer pf.stop()
	for i, s := range slots {
		bits := slotBits(o, s, kept)
		f := pf.take(i)
		if kept[s.weight.name] && o.sensitive == SensitiveFloat {
			r.addFloat(s.weight.name, &s.use, ReasonSensitiveWeight, fmt.Sprintf("%s weight %v", s.node.GetOpType(), s.weight.dims()))
			left.done(s, false)
			continue
		}
		var ok bool
		var err error
		if f != (fetched{}) {
			s.weight.ready = &f
		}
		if o.format == MatMulNBits && !embedding(s) {
			ok, err = matMulNBits(e, ix, o, bits, s, gq, r)
		} else {
			// Embeddings take GatherBlockQuantized (com.microsoft too)
			// under either format.
			ok, err = blockedDQ(e, ix, o, bits, s, gq, r)
		}
		s.weight.ready = nil
		if err != nil {
			return fmt.Errorf("%s: %w", onnx.Label(s.node), err)
		}
		if ok {
			done++
		}
		left.done(s, ok)
	}
	if done == 0 {
		return noWeightsError(m, r)
	}
	e.apply()
	removeDeadConstants(m)
	if o.format == MatMulNBits && m.Opset(msDomain) == 0 {
		m.SetOpset(msDomain, 1)
	}
	return nil
}

// slotBits is the bits a slot's weight is quantized to: 8 for the 4-bit
// weights the guard kept (guardLowBit).
func slotBits(o *options, s weightSlot, kept map[string]bool) int {
	if kept[s.weight.name] {
		return 8
	}
	return o.bits
}

// minBlockRow is the shortest input dimension 4-bit blocks are made for
// (the smallest block MatMulNBits takes): depthwise and tiny kernels (3x3
// over one channel is 9 weights) quantized to 16 levels per output channel
// cost far more accuracy than their few bytes are worth.
const minBlockRow = 16

// blockType is the element type of weight-only blocks of bits bits.
func (o *options) blockType(bits int) QType {
	switch {
	case bits == 4 && o.symmetric:
		return Int4
	case bits == 4:
		return UInt4
	case o.symmetric:
		return Int8
	}
	return UInt8
}

// blockedDQ replaces a weight by DequantizeLinear of blocks of bits bits
// along its input dimension.
func blockedDQ(e *editor, ix *index, o *options, bits int, s weightSlot, gq *gptqHessians, r *Report) (bool, error) {
	if !quantizerOf(s.node).blocked() {
		r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, "format qdq has no blocked form of "+s.node.GetOpType())
		return false, nil
	}
	fromFile := streamed(o, s, gq != nil, bits)
	var data []float32
	var err error
	if !fromFile {
		data, err = floatData(s.weight)
		if err == errNotFinite {
			r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
	dims := s.weight.dims()
	shape, axis := matrixView(s.layer, dims)
	if bits == 4 && shape[axis] < minBlockRow {
		r.addFloat(s.weight.name, &s.use, ReasonTooSmall, fmt.Sprintf("%d weights per output channel", shape[axis]))
		return false, nil
	}
	if embedding(s) && bits == 8 {
		// 8-bit rows: one scale per feature, only the gathered rows
		// dequantized, by a DequantizeLinear along an axis: opset 13
		// (format qdq upgrades the model to 21; matmulnbits does not
		// touch the opset).
		if v := e.ix.model.Opset(""); v < opsetPerChannel {
			r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, fmt.Sprintf("8-bit rows need DequantizeLinear of opset %d, the model has opset %d (format qdq upgrades it)", opsetPerChannel, v))
			return false, nil
		}
		q, err := PerAxis(data, dims, 1, o.blockType(8), o.symmetric)
		if err != nil {
			return false, fmt.Errorf("weight %q: %w", s.weight.name, err)
		}
		w, err := storeWeight(e, s.graph, s.weight, q)
		if err != nil {
			return false, err
		}
		gatherThenDQ(e, s, w)
		r.Quantized = append(r.Quantized, QuantizedTensor{
			Name: s.weight.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(),
			Type: q.Type.String(), Granularity: q.granularity(), Elements: len(data),
		})
		return true, nil
	}
	var q *Quantized
	var g *gptqBlocks
	if fromFile {
		q, err = blockedFromFile(s, shape, o.blockSize, o.blockType(bits), o.symmetric)
		if err == errNotFinite {
			r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
			return false, nil
		}
		if err != nil {
			return false, err
		}
	} else if q, g, err = blockedInMemory(ix, o, bits, s, gq, data, shape, axis); err != nil {
		return false, err
	}
	if embedding(s) {
		return true, gatherBlocks(e, o, s, q, r)
	}
	w, err := storeWeight(e, s.graph, s.weight, q)
	if err != nil {
		return false, err
	}
	if len(shape) == len(dims) {
		readThroughDQ(e, s.use, w, s.weight.name)
	} else {
		// DequantizeLinear -> Reshape back to the kernel's shape.
		shapeName, err := e.addInit(s.graph, s.weight.name+"_shape", onnx.NewTensor([]int64{int64(len(dims))}, append([]int64{}, dims...)))
		if err != nil {
			return false, err
		}
		flat := e.ix.fresh(s.weight.name + "_dequantized")
		out := e.ix.fresh(s.weight.name + "_reshaped")
		e.insertBefore(s.node,
			dqNode(e.ix.fresh(s.weight.name+"_DequantizeLinear"), w.inputs, flat, axis, o.blockSize),
			newNode("Reshape", "", e.ix.fresh(s.weight.name+"_Reshape"), []string{flat, shapeName}, []string{out}))
		s.node.Input[s.input] = out
	}
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: s.weight.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(),
		Type: q.Type.String(), Granularity: q.granularity(), Elements: len(q.Data), Algorithm: algorithmOf(g),
	})
	return true, nil
}

// matrixView is the 2-D view of a weight that blocks run along: the
// weight itself when it is 2-D (an embedding table's blocks run along its
// features, axis 1); [the rest, dims[last]] when the operator
// table's input channels are its last axis (a recurrent W or R); else
// [dims[0], the rest]; and the axis of that view along the input
// channels.
func matrixView(l onnx.Layer, dims []int64) ([]int64, int) {
	_, in, _ := l.WeightAxes(len(dims))
	if l.Kind == onnx.LayerEmbedding {
		return dims, 1 // an embedding's blocks run along each row's features
	}
	if len(dims) == 2 {
		return dims, in
	}
	if last := len(dims) - 1; in == last {
		return []int64{int64(onnx.NumElements(dims[:last])), dims[last]}, 1
	}
	rows := dims[0]
	rest := int64(onnx.NumElements(dims)) / rows
	if in == 0 {
		return []int64{rows, rest}, 0
	}
	return []int64{rows, rest}, 1
}

// matMulNBits replaces a node whose registry entry has an nbits form
// (MatMul; Gemm without transA, its alpha folded into the scales and beta
// into a constant bias) by com.microsoft MatMulNBits.
func matMulNBits(e *editor, ix *index, o *options, bits int, s weightSlot, gq *gptqHessians, r *Report) (bool, error) {
	n := s.node
	form, reason, detail, err := quantizerOf(n).nbits(e, ix, s)
	if err != nil {
		return false, err
	}
	if reason != "" {
		r.addFloat(s.weight.name, &s.use, reason, detail)
		return false, nil
	}
	bias, alpha := form.bias, form.alpha
	dims := s.weight.dims()
	out, in, _ := s.layer.WeightAxes(len(dims))
	k, nn := int(dims[in]), int(dims[out])
	if bits == 4 && k < minBlockRow {
		r.addFloat(s.weight.name, &s.use, ReasonTooSmall, fmt.Sprintf("%d weights per output channel", k))
		return false, nil
	}
	var w *NBits
	var gb *gptqBlocks
	if streamed(o, s, gq != nil, bits) {
		w, err = nbitsFromFile(s, k, nn, bits, o)
	} else {
		w, gb, err = nbitsInMemory(ix, o, bits, s, gq, k, nn, in == 1)
	}
	if err == errNotFinite {
		r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for i := range w.Scales {
		w.Scales[i] *= alpha
	}
	g, base := s.graph, s.weight.name
	bName, err := e.addShared(g, base+"_quantized", onnx.NewTensor([]int64{int64(nn), int64(w.KBlocks), int64(w.BlobSize)}, w.B))
	if err != nil {
		return false, err
	}
	sName, err := e.addShared(g, base+"_scale", onnx.NewTensor([]int64{int64(nn), int64(w.KBlocks)}, w.Scales))
	if err != nil {
		return false, err
	}
	inputs := []string{input(n, s.layer.Data), bName, sName}
	if w.ZeroPoints != nil {
		zName, err := e.addShared(g, base+"_zero_point", onnx.NewTensor([]int64{int64(nn), int64(w.ZeroPointsPerRow())}, w.ZeroPoints))
		if err != nil {
			return false, err
		}
		inputs = append(inputs, zName)
	}
	if bias != "" {
		r.addFloat(input(n, s.layer.Bias), &s.use, ReasonBias, "MatMulNBits bias input")
		for len(inputs) < 5 {
			inputs = append(inputs, "")
		}
		inputs = append(inputs, bias)
	}
	nb := newNode("MatMulNBits", msDomain, e.ix.fresh(onnx.Label(n)+"_MatMulNBits"), inputs, []string{n.GetOutput()[0]},
		onnx.AttrInt("K", int64(k)), onnx.AttrInt("N", int64(nn)), onnx.AttrInt("bits", int64(bits)), onnx.AttrInt("block_size", int64(o.blockSize)))
	e.insertBefore(n, nb)
	e.remove(n)
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: base, Node: onnx.Label(n), OpType: n.GetOpType(),
		Type: fmt.Sprintf("uint%d", bits), Granularity: fmt.Sprintf("matmulnbits(%d)", o.blockSize), Elements: k * nn,
		Algorithm: algorithmOf(gb),
	})
	return true, nil
}

// nbitsBias returns a Gemm's C (name) as MatMulNBits' bias [N]: the constant
// itself, or beta*C (or C reshaped from [1, N]) as a new constant; ok is
// false when C is not a constant [N] or [1, N]. With a nil editor it only
// says whether the form exists.
func nbitsBias(e *editor, ix *index, g *onnxpb.GraphProto, n *onnxpb.NodeProto, name string, beta float32) (string, bool, error) {
	c := ix.floatConst(name)
	if c == nil {
		return "", false, nil
	}
	dims := c.dims()
	switch {
	case len(dims) == 1 && beta == 1:
		return name, true, nil
	case len(dims) == 1, len(dims) == 2 && dims[0] == 1:
	default:
		return "", false, nil
	}
	if e == nil {
		return name, true, nil // a dry run: the form exists
	}
	v, err := floatData(c)
	if err != nil {
		return "", false, err
	}
	for i := range v {
		v[i] *= beta
	}
	out, err := e.addInit(g, name+"_bias", onnx.NewTensor([]int64{int64(len(v))}, v))
	return out, err == nil, err
}

// streamed says a slot's weight is quantized as it is read, a block of
// rows at a time: a float32 2-D weight still in its external data file,
// rounded to nearest (GPTQ's Hessians need the whole weight), either a
// MatMulNBits [K, N] (MatMulNBitsRows) or an embedding table in 4-bit
// blocks along its rows (BlockedRows).
func streamed(o *options, s weightSlot, hessians bool, bits int) bool {
	dims := s.weight.dims()
	if hessians || len(dims) != 2 || !s.weight.w.Streamed() || s.weight.dtype() != onnx.Float {
		return false
	}
	if embedding(s) {
		return bits == 4
	}
	_, in, _ := s.layer.WeightAxes(2)
	return o.format == MatMulNBits && in == 0
}

// blockedFromFile quantizes a streamed weight blocked along its rows
// from its file.
func blockedFromFile(s weightSlot, shape []int64, blockSize int, t QType, symmetric bool) (*Quantized, error) {
	rc, err := s.weight.w.OpenRaw()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	q, err := BlockedRows(rc, int(shape[0]), int(shape[1]), blockSize, t, symmetric)
	if err != nil && err != errNotFinite {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return q, err
}

// blockedInMemory quantizes a weight read whole in blocks, rounded to
// nearest or by GPTQ (g, when it has the Hessian of the weight's input).
func blockedInMemory(ix *index, o *options, bits int, s weightSlot, gq *gptqHessians, data []float32, shape []int64, axis int) (*Quantized, *gptqBlocks, error) {
	g, in, err := gq.round(ix, s, data, o.blockSize, o.blockType(bits), o.symmetric)
	if err != nil {
		return nil, nil, err
	}
	if g != nil {
		return g.quantized(s.weight.dims(), in), g, nil
	}
	q, err := Blocked(data, shape, axis, o.blockSize, o.blockType(bits), o.symmetric)
	if err != nil {
		return nil, nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return q, nil, nil
}

// nbitsFromFile quantizes a row-streamed weight from its file.
func nbitsFromFile(s weightSlot, k, n, bits int, o *options) (*NBits, error) {
	rc, err := s.weight.w.OpenRaw()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	w, err := MatMulNBitsRows(rc, k, n, bits, o.blockSize, o.symmetric)
	if err != nil && err != errNotFinite {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return w, err
}

// nbitsInMemory quantizes a weight read whole, rounded to nearest or by
// GPTQ (gb, when it has the Hessian of the weight's input).
func nbitsInMemory(ix *index, o *options, bits int, s weightSlot, gq *gptqHessians, k, n int, transposed bool) (*NBits, *gptqBlocks, error) {
	// Round to nearest finds NaN and Inf as it quantizes
	// (MatMulNBitsWeight); GPTQ's rounding needs them out first.
	read := floatData
	if gq == nil {
		read = floats
	}
	data, err := read(s.weight)
	if err != nil {
		return nil, nil, err
	}
	gb, _, err := gq.round(ix, s, data, o.blockSize, nbitsType(bits, o.symmetric), o.symmetric)
	if err != nil {
		return nil, nil, err
	}
	if gb != nil {
		return gb.nbits(bits, o.symmetric), gb, nil
	}
	w, err := MatMulNBitsWeight(data, k, n, transposed, bits, o.blockSize, o.symmetric)
	if err != nil && err != errNotFinite {
		return nil, nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return w, nil, err
}
