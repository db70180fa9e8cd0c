package quantize

import (
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Weight-only quantization stores weights as int4 or int8 in blocks of
// blockSize along the input dimension and computes in float:
//
//	qdq:         DequantizeLinear(axis, block_size) at opset 21 feeding the
//	             node (ONNX Runtime fuses it with MatMul into MatMulNBits);
//	             Conv weights [M, C/g, k...] are blocked as the matrix
//	             [M, C/g*k...] and reshaped back, so depthwise and 1x1
//	             kernels still get full blocks
//	matmulnbits: com.microsoft MatMulNBits for MatMul and Gemm; Conv and
//	             ConvTranspose stay in float (the operator is a matrix
//	             product).

// msDomain is ONNX Runtime's contrib operator domain.
const msDomain = "com.microsoft"

func quantizeWeightOnly(m *onnx.Model, o *options, r *Report) error {
	if o.format == v1alpha1.FormatQDQ {
		if err := ensureOpset(m, opsetBlocked); err != nil {
			return err
		}
	}
	ix := newIndex(m)
	slots := weightSlots(ix, o, r, map[string]bool{})
	e := newEditor(ix, r.own)
	done := 0
	left := pendingReaders(slots)
	for _, s := range slots {
		var ok bool
		var err error
		if o.format == v1alpha1.FormatMatMulNBits {
			ok, err = matMulNBits(e, ix, o, s, r)
		} else {
			ok, err = blockedDQ(e, o, s, r)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", nodeLabel(s.node), err)
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
	if o.format == v1alpha1.FormatMatMulNBits && m.Opset(msDomain) == 0 {
		m.SetOpset(msDomain, 1)
	}
	return nil
}

// minBlockRow is the shortest input dimension 4-bit blocks are made for
// (the smallest block MatMulNBits takes): depthwise and tiny kernels (3x3
// over one channel is 9 weights) quantized to 16 levels per output channel
// cost far more accuracy than their few bytes are worth.
const minBlockRow = 16

func (o *options) blockType() QType {
	switch {
	case o.bits == 4 && o.symmetric:
		return Int4
	case o.bits == 4:
		return UInt4
	case o.symmetric:
		return Int8
	}
	return UInt8
}

// blockedDQ replaces a weight by DequantizeLinear of blocks along its input
// dimension.
func blockedDQ(e *editor, o *options, s weightSlot, r *Report) (bool, error) {
	data, err := floatData(s.weight)
	if err == errNotFinite {
		r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dims := s.weight.dims()
	// The matrix view and the axis that runs along the input dimension.
	var shape []int64
	var axis int
	switch s.node.GetOpType() {
	case "MatMul":
		shape, axis = dims, 0 // [K, N]
	case "Gemm":
		shape, axis = dims, 1-s.axis // [N, K] when transB, else [K, N]
	case "Conv":
		shape, axis = []int64{dims[0], int64(len(data)) / dims[0]}, 1
	case "ConvTranspose":
		shape, axis = []int64{dims[0], int64(len(data)) / dims[0]}, 0
	}
	if o.bits == 4 && shape[axis] < minBlockRow {
		r.addFloat(s.weight.name, &s.use, ReasonTooSmall, fmt.Sprintf("%d weights per output channel", shape[axis]))
		return false, nil
	}
	q, err := Blocked(data, shape, axis, o.blockSize, o.blockType(), o.symmetric)
	if err != nil {
		return false, fmt.Errorf("weight %q: %w", s.weight.name, err)
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
		Name: s.weight.name, Node: nodeLabel(s.node), OpType: s.node.GetOpType(),
		Type: q.Type.String(), Granularity: q.granularity(), Elements: len(data),
	})
	return true, nil
}

// matMulNBits replaces MatMul, and Gemm without transA, by com.microsoft
// MatMulNBits; a Gemm's alpha is folded into the scales and beta into a
// constant bias.
func matMulNBits(e *editor, ix *index, o *options, s weightSlot, r *Report) (bool, error) {
	n := s.node
	var bias string
	alpha := float32(1)
	switch n.GetOpType() {
	case "MatMul":
	case "Gemm":
		if onnx.IntAttr(n, "transA", 0) != 0 {
			r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, "MatMulNBits has no transA")
			return false, nil
		}
		alpha = onnx.FloatAttr(n, "alpha", 1)
		if len(n.GetInput()) > 2 && n.GetInput()[2] != "" {
			var ok bool
			var err error
			if bias, ok, err = nbitsBias(e, ix, s.graph, n, onnx.FloatAttr(n, "beta", 1)); err != nil || !ok {
				if err == nil {
					r.addFloat(s.weight.name, &s.use, ReasonShape, "MatMulNBits takes a constant bias of shape [N] only")
				}
				return false, err
			}
		}
	default:
		r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, "format matmulnbits covers MatMul and Gemm")
		return false, nil
	}
	data, err := floatData(s.weight)
	if err == errNotFinite {
		r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dims := s.weight.dims()
	transposed := n.GetOpType() == "Gemm" && onnx.IntAttr(n, "transB", 0) != 0
	k, nn := int(dims[0]), int(dims[1])
	if transposed {
		k, nn = nn, k
	}
	if o.bits == 4 && k < minBlockRow {
		r.addFloat(s.weight.name, &s.use, ReasonTooSmall, fmt.Sprintf("%d weights per output channel", k))
		return false, nil
	}
	w, err := MatMulNBitsWeight(data, k, nn, transposed, o.bits, o.blockSize, o.symmetric)
	if err != nil {
		return false, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	for i := range w.Scales {
		w.Scales[i] *= alpha
	}
	g, base := s.graph, s.weight.name
	bName, err := e.addInit(g, base+"_quantized", onnx.NewTensor([]int64{int64(nn), int64(w.KBlocks), int64(w.BlobSize)}, w.B))
	if err != nil {
		return false, err
	}
	sName, err := e.addInit(g, base+"_scale", onnx.NewTensor([]int64{int64(nn), int64(w.KBlocks)}, w.Scales))
	if err != nil {
		return false, err
	}
	inputs := []string{n.GetInput()[0], bName, sName}
	if w.ZeroPoints != nil {
		zName, err := e.addInit(g, base+"_zero_point", onnx.NewTensor([]int64{int64(nn), int64(w.ZeroPointsPerRow())}, w.ZeroPoints))
		if err != nil {
			return false, err
		}
		inputs = append(inputs, zName)
	}
	if bias != "" {
		r.addFloat(n.GetInput()[2], &s.use, ReasonBias, "MatMulNBits bias input")
		for len(inputs) < 5 {
			inputs = append(inputs, "")
		}
		inputs = append(inputs, bias)
	}
	nb := newNode("MatMulNBits", msDomain, e.ix.fresh(nodeLabel(n)+"_MatMulNBits"), inputs, []string{n.GetOutput()[0]},
		onnx.AttrInt("K", int64(k)), onnx.AttrInt("N", int64(nn)), onnx.AttrInt("bits", int64(o.bits)), onnx.AttrInt("block_size", int64(o.blockSize)))
	e.insertBefore(n, nb)
	e.remove(n)
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: base, Node: nodeLabel(n), OpType: n.GetOpType(),
		Type: fmt.Sprintf("uint%d", o.bits), Granularity: fmt.Sprintf("matmulnbits(%d)", o.blockSize), Elements: len(data),
	})
	return true, nil
}

// nbitsBias returns a Gemm's C as MatMulNBits' bias [N]: the constant
// itself, or beta*C (or C reshaped from [1, N]) as a new constant; ok is
// false when C is not a constant [N] or [1, N].
func nbitsBias(e *editor, ix *index, g *onnxpb.GraphProto, n *onnxpb.NodeProto, beta float32) (string, bool, error) {
	name := n.GetInput()[2]
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
