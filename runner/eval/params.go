package eval

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// slotRole is what an operator input holds, for counting parameters.
type slotRole int

const (
	plainSlot  slotRole = iota
	quantParam          // a scale or zero point: not a parameter
	quantCode           // integer codes of a quantized weight: a parameter
)

// quantSlots gives the roles of the quantized operators' inputs (the
// ONNX and com.microsoft operator signatures).
var quantSlots = map[string]map[int]slotRole{
	"QuantizeLinear":   {1: quantParam, 2: quantParam},
	"DequantizeLinear": {0: quantCode, 1: quantParam, 2: quantParam},
	"ConvInteger":      {1: quantCode, 2: quantParam, 3: quantParam},
	"MatMulInteger":    {0: quantCode, 1: quantCode, 2: quantParam, 3: quantParam},
	"QLinearConv":      {1: quantParam, 2: quantParam, 3: quantCode, 4: quantParam, 5: quantParam, 6: quantParam, 7: quantParam, 8: quantCode},
	"QLinearMatMul":    {0: quantCode, 1: quantParam, 2: quantParam, 3: quantCode, 4: quantParam, 5: quantParam, 6: quantParam, 7: quantParam},
	"MatMulNBits":      {1: quantCode, 2: quantParam, 3: quantParam, 4: quantParam},
}

// zeroPointSlot says where a quantCode slot's zero point is (-1: none, the
// codes are zero-centred) and along which axis it varies when it is a
// vector; axis -1 is the last dimension, -2 the one before.
type zeroPointSlot struct{ input, axis int }

var zeroPointSlots = map[string]map[int]zeroPointSlot{
	"DequantizeLinear": {0: {2, 1}}, // axis from the node's attribute
	"ConvInteger":      {1: {3, 0}},
	"MatMulInteger":    {0: {2, -2}, 1: {3, -1}},
	"QLinearConv":      {3: {5, 0}, 8: {-1, 0}},
	"QLinearMatMul":    {0: {2, -2}, 3: {5, -1}},
}

// paramCounter counts parameters and non-zero parameters as the package
// documentation defines them.
type paramCounter struct {
	weights map[string]*onnx.Weight
	// producer maps each node output to its node and output index.
	producer map[string]produced
}

type produced struct {
	node *onnxpb.NodeProto
	out  int
}

func countParams(m *onnx.Model) (params, nonzero int64, err error) {
	ws := m.Weights()
	c := paramCounter{weights: map[string]*onnx.Weight{}, producer: map[string]produced{}}
	for _, w := range ws {
		if c.weights[w.Name] == nil {
			c.weights[w.Name] = w
		}
	}
	for _, ref := range m.Graphs() {
		for _, n := range ref.Graph.GetNode() {
			for i, o := range n.GetOutput() {
				c.producer[o] = produced{n, i}
			}
		}
	}
	for _, w := range ws {
		p, nz, err := c.count(w)
		if err != nil {
			return 0, 0, fmt.Errorf("weight %q: %w", w.Name, err)
		}
		params += p
		nonzero += nz
	}
	return params, nonzero, nil
}

// count returns the weight's parameters and non-zero parameters.
func (c paramCounter) count(w *onnx.Weight) (int64, int64, error) {
	switch {
	case onnx.IsFloat(w.DType):
		if c.onlyQuantParams(w) {
			return 0, 0, nil
		}
		vals, err := w.Float32s()
		if err != nil {
			return 0, 0, err
		}
		var nz int64
		for _, v := range vals {
			if v != 0 {
				nz++
			}
		}
		return int64(len(vals)), nz, nil
	case onnx.IsInteger(w.DType):
		for _, u := range w.Uses {
			if c.role(u) == quantCode {
				return c.countCodes(w, u)
			}
		}
	}
	return 0, 0, nil // shapes, indices, strings: not parameters
}

// onlyQuantParams reports whether every read of a float weight is as a
// scale or zero point.
func (c paramCounter) onlyQuantParams(w *onnx.Weight) bool {
	for _, u := range w.Uses {
		if c.role(u) != quantParam {
			return false
		}
	}
	return len(w.Uses) > 0
}

func (c paramCounter) role(u onnx.Use) slotRole {
	if r, ok := quantSlots[u.OpType()][u.Input]; ok {
		return r
	}
	// A dynamically quantized graph rescales the integer product by
	// Mul(activation scale, weight scale), the activation scale being
	// DynamicQuantizeLinear's second output: the weight scale is a
	// quantization parameter too.
	if u.OpType() == "Mul" && len(u.Node.GetInput()) == 2 {
		other := u.Node.GetInput()[1-u.Input]
		if p, ok := c.producer[other]; ok && p.node.GetOpType() == "DynamicQuantizeLinear" && p.out == 1 {
			return quantParam
		}
	}
	return plainSlot
}

// countCodes counts a quantized weight read through use u: non-zero are
// the codes that differ from their zero point.
func (c paramCounter) countCodes(w *onnx.Weight, u onnx.Use) (int64, int64, error) {
	if u.OpType() == "MatMulNBits" {
		return c.countNBits(w, u.Node)
	}
	codes, err := w.Float32s()
	if err != nil {
		return 0, 0, err
	}
	zero, err := c.zeroPoints(w, u)
	if err != nil {
		return 0, 0, fmt.Errorf("%s input %d: %w", u.OpType(), u.Input, err)
	}
	var nz int64
	for i, q := range codes {
		if q != zero(i) {
			nz++
		}
	}
	return int64(len(codes)), nz, nil
}

// zeroPoints returns the zero point of each element of w as read by u. A
// zero point computed at run time (not a weight) is taken as 0.
func (c paramCounter) zeroPoints(w *onnx.Weight, u onnx.Use) (func(int) float32, error) {
	none := func(int) float32 { return 0 }
	slot, ok := zeroPointSlots[u.OpType()][u.Input]
	if !ok || slot.input < 0 {
		return none, nil
	}
	zw := c.weights[input(u.Node, slot.input)]
	if zw == nil {
		return none, nil
	}
	zp, err := zw.Float32s()
	if err != nil {
		return nil, err
	}
	axis, block := int64(slot.axis), int64(0)
	if u.OpType() == "DequantizeLinear" {
		axis, block = onnx.IntAttr(u.Node, "axis", 1), onnx.IntAttr(u.Node, "block_size", 0)
	}
	at, err := zeroPointIndex(w.Dims, zw.Dims, axis, block)
	if err != nil {
		return nil, fmt.Errorf("zero point %q: %w", zw.Name, err)
	}
	return func(i int) float32 { return zp[at(i)] }, nil
}

// zeroPointIndex maps an element of a tensor of dims to its zero point: a
// scalar (or one-element) zero point, one per index of axis, or, with
// block > 0, one per block of block indices along axis (the zero point
// then has the tensor's rank).
func zeroPointIndex(dims, zpDims []int64, axis, block int64) (func(int) int, error) {
	if onnx.NumElements(zpDims) == 1 {
		return func(int) int { return 0 }, nil
	}
	rank := int64(len(dims))
	if axis < 0 {
		axis += rank
	}
	if axis < 0 || axis >= rank {
		return nil, fmt.Errorf("axis %d is out of range for weight dims %v", axis, dims)
	}
	inner, n := int(product(dims[axis+1:])), int(dims[axis])
	if block == 0 {
		if len(zpDims) != 1 || zpDims[0] != dims[axis] {
			return nil, fmt.Errorf("dims %v do not hold one zero point per index of axis %d of weight dims %v", zpDims, axis, dims)
		}
		return func(i int) int { return (i / inner) % n }, nil
	}
	blocks := (dims[axis] + block - 1) / block
	if int64(len(zpDims)) != rank || zpDims[axis] != blocks {
		return nil, fmt.Errorf("dims %v do not hold one zero point per block of %d along axis %d of weight dims %v", zpDims, block, axis, dims)
	}
	nb, b := int(blocks), int(block)
	return func(i int) int {
		outer, along, in := i/(n*inner), (i/inner)%n, i%inner
		return (outer*nb+along/b)*inner + in
	}, nil
}

// countNBits counts a com.microsoft MatMulNBits weight: B is [N, blocks,
// blob] uint8 holding K codes per column packed along K, low bits first;
// zero points are absent (2^(bits-1)), packed uint8 [N, ceil(blocks *
// bits / 8)], or float [N * blocks].
func (c paramCounter) countNBits(w *onnx.Weight, n *onnxpb.NodeProto) (int64, int64, error) {
	K, N := int(onnx.IntAttr(n, "K", 0)), int(onnx.IntAttr(n, "N", 0))
	bits, block := int(onnx.IntAttr(n, "bits", 4)), int(onnx.IntAttr(n, "block_size", 0))
	if K <= 0 || N <= 0 || block <= 0 || (bits != 2 && bits != 4 && bits != 8) {
		return 0, 0, fmt.Errorf("MatMulNBits attributes K=%d N=%d bits=%d block_size=%d: expected positive K, N, block_size and bits 2, 4 or 8", K, N, bits, block)
	}
	t, err := w.Tensor()
	if err != nil {
		return 0, 0, err
	}
	packed, ok := t.Data.([]uint8)
	blocks, blob := (K+block-1)/block, block*bits/8
	if !ok || len(packed) != N*blocks*blob {
		return 0, 0, fmt.Errorf("MatMulNBits B holds %d %v values, expected %d uint8 for N=%d, K=%d, block_size=%d, bits=%d", t.Len(), t.DType, N*blocks*blob, N, K, block, bits)
	}
	zero, err := c.nbitsZeroPoints(n, N, blocks, bits)
	if err != nil {
		return 0, 0, err
	}
	var nz int64
	for col := range N {
		for b := range blocks {
			codes := packed[(col*blocks+b)*blob : (col*blocks+b+1)*blob]
			z := zero(col, b)
			for j := range min(block, K-b*block) {
				if float32(unpack(codes, j, bits)) != z {
					nz++
				}
			}
		}
	}
	return int64(K) * int64(N), nz, nil
}

func (c paramCounter) nbitsZeroPoints(n *onnxpb.NodeProto, N, blocks, bits int) (func(col, b int) float32, error) {
	zw := c.weights[input(n, 3)]
	if zw == nil {
		def := float32(int(1) << (bits - 1))
		return func(int, int) float32 { return def }, nil
	}
	t, err := zw.Tensor()
	if err != nil {
		return nil, err
	}
	if packed, ok := t.Data.([]uint8); ok {
		row := (blocks*bits + 7) / 8
		if len(packed) != N*row {
			return nil, fmt.Errorf("MatMulNBits zero points %q hold %d bytes, expected %d", zw.Name, len(packed), N*row)
		}
		return func(col, b int) float32 { return float32(unpack(packed[col*row:(col+1)*row], b, bits)) }, nil
	}
	vals, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("MatMulNBits zero points %q: %w", zw.Name, err)
	}
	if len(vals) != N*blocks {
		return nil, fmt.Errorf("MatMulNBits zero points %q hold %d values, expected %d (N x blocks)", zw.Name, len(vals), N*blocks)
	}
	return func(col, b int) float32 { return vals[col*blocks+b] }, nil
}

// unpack reads code j of codes packed bits at a time, low bits first.
func unpack(codes []uint8, j, bits int) uint8 {
	bit := j * bits
	return (codes[bit/8] >> (bit % 8)) & uint8(1<<bits-1)
}
