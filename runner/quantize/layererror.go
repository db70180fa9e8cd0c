package quantize

import (
	"context"
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// LayerError is the output error weight quantization gave one linear
// layer.
type LayerError struct {
	// Weight is the float weight's name, Node the layer's output.
	Weight, Node string
	// Relative is ‖X·Ŵ - X·W‖ / ‖X·W‖ over the rows X of the layer's
	// input: W the float weight, Ŵ what the quantized model multiplies by.
	Relative float64
	// WithInput is ‖X̂·Ŵ - X·W‖ / ‖X·W‖, X̂ the input rounded as the
	// quantized model rounds it (static's QuantizeLinear scale and zero
	// point; dynamic's uint8 range of each batch, here of the rows
	// measured): the error of the whole integer layer. Relative where the
	// input stays float.
	WithInput float64
}

// LayerErrors measures every MatMul of float whose output quantized
// computes with a weight it stores (MatMulNBits, a MatMul of a constant
// or of a DequantizeLinear of constants: what weight-only, static and
// pruned models hold) and changed, on the inputs float gives the layer on
// data: at most maxRows rows of each input, so the error of a layer is
// its own, not that of the layers before it. It is the figure GPTQ
// minimizes, measured on data it did not see when data is held out.
func LayerErrors(ctx context.Context, float, quantized *onnx.Model, data Calibration, samples, maxRows int) ([]LayerError, error) {
	// Layers are found first and their weights read one at a time after
	// the calibration pass: a model of any size is measured in the memory
	// of one layer's weights (and the rows kept).
	type layer struct {
		float *constant
		node  *onnxpb.NodeProto
		input string
	}
	fix := newIndex(float)
	producers := map[string]*onnxpb.NodeProto{}
	for _, n := range float.Proto.GetGraph().GetNode() {
		for _, o := range n.GetOutput() {
			producers[o] = n
		}
	}
	var layers []layer
	inputs := map[string]int{}
	qix := newIndex(quantized)
	for _, n := range quantized.Proto.GetGraph().GetNode() {
		if len(n.GetOutput()) == 0 || !multiplies(qix, n) {
			continue
		}
		fn := producers[n.GetOutput()[0]]
		if fn == nil || fn.GetOpType() != "MatMul" || len(fn.GetInput()) != 2 {
			continue
		}
		c := fix.consts[fn.GetInput()[1]]
		if c == nil || len(c.dims()) != 2 {
			continue
		}
		layers = append(layers, layer{float: c, node: n, input: fn.GetInput()[0]})
		inputs[fn.GetInput()[0]] = int(c.dims()[0])
	}
	if len(layers) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	rows := rowCollector{max: maxRows, cols: inputs, rows: map[string][]float32{}}
	if _, err := calibrate(ctx, float, names, data, rows, samples); err != nil {
		return nil, fmt.Errorf("layer errors: %w", err)
	}
	out := make([]LayerError, 0, len(layers))
	for _, l := range layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		q, err := multipliedWeight(quantized, qix, l.node)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", onnx.Label(l.node), err)
		}
		if q == nil {
			continue
		}
		w, err := floatData(l.float)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", l.float.name, err)
		}
		dims := l.float.dims()
		k, n := int(dims[0]), int(dims[1])
		if len(q) != len(w) {
			return nil, fmt.Errorf("%s multiplies by %d values, the float weight %q %v has %d", onnx.Label(l.node), len(q), l.float.name, dims, len(w))
		}
		x := rows.rows[l.input]
		m := len(x) / k
		y := product(x, w, m, k, n)
		weightOnly := compare.RelativeError(product(x, q, m, k, n), y)
		if weightOnly == 0 {
			continue // the weight was left as it was
		}
		e := LayerError{Weight: l.float.name, Node: l.node.GetOutput()[0], Relative: weightOnly, WithInput: weightOnly}
		if round := inputRounding(qix, l.node); round != nil {
			e.WithInput = compare.RelativeError(product(round(x), q, m, k, n), y)
		}
		out = append(out, e)
	}
	return out, nil
}

// inputRounding returns what the quantized layer n does to its input
// before multiplying: a static QuantizeLinear -> DequantizeLinear of
// constant scale and zero point, or dynamic's DynamicQuantizeLinear
// (uint8 over the range of the values, 0 included); nil when the input
// is read in float.
func inputRounding(ix *index, n *onnxpb.NodeProto) func([]float32) []float32 {
	if mi := dynamicMatMul(ix, n); mi != nil {
		return func(x []float32) []float32 {
			lo, hi := finiteMinMax(x)
			return roundTrip(x, ComputeParams(lo, hi, UInt8, false), UInt8)
		}
	}
	dq := ix.producer[input(n, 0)]
	if dq == nil || dq.GetOpType() != "DequantizeLinear" || len(dq.GetInput()) < 3 {
		return nil
	}
	scale, zp := ix.floatConst(dq.GetInput()[1]), ix.consts[dq.GetInput()[2]]
	if scale == nil || zp == nil || onnx.NumElements(scale.dims()) != 1 {
		return nil
	}
	s, err1 := floatData(scale)
	z, err2 := zp.tensor()
	if err1 != nil || err2 != nil {
		return nil
	}
	var p Params
	var t QType
	switch d := z.Data.(type) {
	case []uint8:
		p, t = Params{Scale: s[0], ZeroPoint: int32(d[0])}, UInt8
	case []int8:
		p, t = Params{Scale: s[0], ZeroPoint: int32(d[0])}, Int8
	default:
		return nil
	}
	return func(x []float32) []float32 { return roundTrip(x, p, t) }
}

// roundTrip quantizes and dequantizes a copy of x.
func roundTrip(x []float32, p Params, t QType) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = p.Dequantize(p.Quantize(v, t))
	}
	return out
}

// dynamicMatMul returns the MatMulInteger of dynamic quantization's
// form whose result n (Mul(Cast(MatMulInteger), scale)) scales back to
// float, or nil.
func dynamicMatMul(ix *index, n *onnxpb.NodeProto) *onnxpb.NodeProto {
	if n.GetOpType() != "Mul" || len(n.GetInput()) != 2 {
		return nil
	}
	cast := ix.producer[n.GetInput()[0]]
	if cast == nil || cast.GetOpType() != "Cast" {
		return nil
	}
	mi := ix.producer[cast.GetInput()[0]]
	if mi == nil || mi.GetOpType() != "MatMulInteger" || len(mi.GetInput()) < 2 {
		return nil
	}
	return mi
}

// multiplies says whether n may multiply its input by a stored weight
// (multipliedWeight tells).
func multiplies(ix *index, n *onnxpb.NodeProto) bool {
	return (n.GetOpType() == "MatMulNBits" && n.GetDomain() == msDomain) || (n.GetOpType() == "MatMul" && onnx.IsDefaultDomain(n.GetDomain())) ||
		dynamicMatMul(ix, n) != nil
}

// multipliedWeight is the [K, N] matrix node n multiplies its input by,
// when it is a MatMulNBits, a MatMul of a constant or of a
// DequantizeLinear of constants (per tensor or per channel), or the
// scaled MatMulInteger of dynamic quantization; nil for other nodes.
func multipliedWeight(m *onnx.Model, ix *index, n *onnxpb.NodeProto) ([]float32, error) {
	if mi := dynamicMatMul(ix, n); mi != nil {
		return integerMatMulWeight(ix, n, mi)
	}
	switch {
	case n.GetOpType() == "MatMulNBits" && n.GetDomain() == msDomain:
		nb, err := nbitsOf(m, n)
		if err != nil {
			return nil, err
		}
		return nb.Dequantize(), nil
	case n.GetOpType() != "MatMul" || len(n.GetInput()) != 2 || !onnx.IsDefaultDomain(n.GetDomain()):
		return nil, nil
	}
	b := n.GetInput()[1]
	if c := ix.consts[b]; c != nil {
		if c.dtype() != onnx.Float {
			return nil, nil
		}
		return floatData(c)
	}
	dq := ix.producer[b]
	if dq == nil || dq.GetOpType() != "DequantizeLinear" {
		return nil, nil
	}
	var ts []*onnx.Tensor
	for i, name := range dq.GetInput() {
		c := ix.consts[name]
		if c == nil {
			if name == "" && i == 2 {
				break
			}
			return nil, nil
		}
		t, err := c.tensor()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if len(ts) < 2 || len(ts[0].Dims) != 2 {
		return nil, nil
	}
	axis := 1
	for _, a := range dq.GetAttribute() {
		switch a.GetName() {
		case "axis":
			axis = int(a.GetI())
		case "block_size":
			if a.GetI() > 0 {
				return nil, nil // blocked weights: read through MatMulNBits instead
			}
		}
	}
	return dequantizeLinear(ts, axis)
}

// integerMatMulWeight reads back the weight of dynamic quantization's form
// Mul(Cast(MatMulInteger(x, w, x_zp, w_zp)), Mul(x_scale, w_scale)): w
// dequantized with w_scale (per tensor or per column) and w_zp.
func integerMatMulWeight(ix *index, n, mi *onnxpb.NodeProto) ([]float32, error) {
	scales := ix.producer[n.GetInput()[1]]
	if scales == nil || scales.GetOpType() != "Mul" || len(scales.GetInput()) != 2 {
		return nil, nil
	}
	names := []string{mi.GetInput()[1], scales.GetInput()[1]}
	if len(mi.GetInput()) > 3 && mi.GetInput()[3] != "" {
		names = append(names, mi.GetInput()[3])
	}
	var ts []*onnx.Tensor
	for _, name := range names {
		c := ix.consts[name]
		if c == nil {
			return nil, nil
		}
		t, err := c.tensor()
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if len(ts[0].Dims) != 2 {
		return nil, nil
	}
	return dequantizeLinear(ts, 1)
}

// dequantizeLinear computes DequantizeLinear(q, scale, zero point) of a
// 2-D int8 or uint8 tensor, per tensor or per channel along axis.
func dequantizeLinear(ts []*onnx.Tensor, axis int) ([]float32, error) {
	q, scale := ts[0], ts[1]
	var vals []int32
	switch d := q.Data.(type) {
	case []int8:
		for _, v := range d {
			vals = append(vals, int32(v))
		}
	case []uint8:
		for _, v := range d {
			vals = append(vals, int32(v))
		}
	default:
		return nil, nil
	}
	scales, err := scale.Float32s()
	if err != nil {
		return nil, err
	}
	zps := make([]int32, len(scales))
	if len(ts) > 2 {
		switch d := ts[2].Data.(type) {
		case []int8:
			for i, v := range d {
				zps[i] = int32(v)
			}
		case []uint8:
			for i, v := range d {
				zps[i] = int32(v)
			}
		}
	}
	if axis < 0 {
		axis += 2
	}
	cols := int(q.Dims[1])
	out := make([]float32, len(vals))
	for i, v := range vals {
		c := 0
		if len(scales) > 1 {
			c = i % cols
			if axis == 0 {
				c = i / cols
			}
		}
		out[i] = float32(v-zps[c]) * scales[c]
	}
	return out, nil
}

// product is X·W for X [m, k] and W [k, n], row-major.
func product(x, w []float32, m, k, n int) []float32 {
	y := make([]float32, m*n)
	blas32.Gemm(blas.NoTrans, blas.NoTrans, 1,
		blas32.General{Rows: m, Cols: k, Stride: k, Data: x},
		blas32.General{Rows: k, Cols: n, Stride: n, Data: w},
		0, blas32.General{Rows: m, Cols: n, Stride: n, Data: y})
	return y
}

// nbitsOf reads a MatMulNBits node's weight back (B, scales, zero points
// initializers; attributes K, N, bits, block_size).
func nbitsOf(m *onnx.Model, n *onnxpb.NodeProto) (*NBits, error) {
	attr := map[string]int{}
	for _, a := range n.GetAttribute() {
		attr[a.GetName()] = int(a.GetI())
	}
	k, nn, bits, bs := attr["K"], attr["N"], attr["bits"], attr["block_size"]
	if k <= 0 || nn <= 0 || (bits != 4 && bits != 8) || bs < 16 {
		return nil, fmt.Errorf("attributes K %d, N %d, bits %d, block_size %d", k, nn, bits, bs)
	}
	read := func(i int) (*onnx.Tensor, error) {
		if i >= len(n.GetInput()) || n.GetInput()[i] == "" {
			return nil, nil
		}
		w := m.Weight(n.GetInput()[i])
		if w == nil {
			return nil, fmt.Errorf("input %d %q is not a constant", i, n.GetInput()[i])
		}
		return w.Tensor()
	}
	w := &NBits{K: k, N: nn, Bits: bits, BlockSize: bs, KBlocks: (k + bs - 1) / bs, BlobSize: bs * bits / 8}
	b, err := read(1)
	if err != nil {
		return nil, err
	}
	s, err := read(2)
	if err != nil {
		return nil, err
	}
	zp, err := read(3)
	if err != nil {
		return nil, err
	}
	var ok bool
	if b == nil || s == nil {
		return nil, fmt.Errorf("no B or scales")
	}
	if w.B, ok = b.Data.([]uint8); !ok || len(w.B) != nn*w.KBlocks*w.BlobSize {
		return nil, fmt.Errorf("B is %v %v, want uint8 [%d, %d, %d]", b.DType, b.Dims, nn, w.KBlocks, w.BlobSize)
	}
	if w.Scales, ok = s.Data.([]float32); !ok || len(w.Scales) != nn*w.KBlocks {
		return nil, fmt.Errorf("scales are %v %v, want float [%d, %d]", s.DType, s.Dims, nn, w.KBlocks)
	}
	if zp != nil {
		if w.ZeroPoints, ok = zp.Data.([]uint8); !ok || len(w.ZeroPoints) != nn*w.ZeroPointsPerRow() {
			return nil, fmt.Errorf("zero points are %v %v, want packed uint8 [%d, %d]", zp.DType, zp.Dims, nn, w.ZeroPointsPerRow())
		}
	}
	return w, nil
}

// rowCollector keeps the first max rows of each tensor, read as rows of
// its last dimension (cols).
type rowCollector struct {
	max  int
	cols map[string]int
	rows map[string][]float32
}

func (c rowCollector) Collect(name string, data []float32) {
	have := c.rows[name]
	room := c.max*c.cols[name] - len(have)
	if room <= 0 {
		return
	}
	n := min(room, len(data)/c.cols[name]*c.cols[name])
	c.rows[name] = append(have, data[:n]...)
}

func (c rowCollector) Ranges() map[string]Range { return nil }
