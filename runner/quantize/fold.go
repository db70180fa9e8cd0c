package quantize

import (
	"math"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Rewrites that put a model in the shape quantization wants, as
// onnxruntime's quantization pre-processing does, all exact up to float
// rounding; the registry's fold role of the first node says which apply:
//   - foldChannels (Conv, ConvTranspose): an Add of a constant after it
//     becomes its bias (quantized to int32 inside QLinearConv instead of a
//     float Add on a dequantized output); a BatchNormalization after it is
//     folded into its weights and bias: quantizing the un-normalized
//     output (ppocr-det has one spanning +-12000 before its
//     BatchNormalization) would lose what the normalization then
//     magnifies, and float16 would lose it to cancellation in x - mean;
//   - foldGemm (MatMul): with an Add of a 2-D input it becomes Gemm (QGemm
//     keeps a float output, so logits are not quantized).

// foldBiases applies the rewrites to the main graph and returns the number
// of nodes removed.
func foldBiases(m *onnx.Model) (int, error) {
	removed := 0
	for {
		ix := newIndex(m)
		n, err := foldOne(ix)
		if err != nil {
			return removed, err
		}
		if n == 0 {
			return removed, nil
		}
		removed += n
	}
}

// foldOne applies every rewrite whose nodes do not overlap, then returns
// so the index can be rebuilt.
func foldOne(ix *index) (int, error) {
	g := ix.model.Proto.GetGraph()
	e := newEditor(ix, nil)
	touched := map[*onnxpb.NodeProto]bool{}
	count := 0
	for _, bn := range g.GetNode() {
		if bn.GetOpType() != "BatchNormalization" || !onnx.IsDefaultDomain(bn.GetDomain()) || touched[bn] {
			continue
		}
		prod := ix.producer[bn.GetInput()[0]]
		if prod == nil || touched[prod] || ix.graphOf[prod] != g || len(ix.uses[prod.GetOutput()[0]]) != 1 || ix.outputs[prod.GetOutput()[0]] {
			continue
		}
		ok, err := foldBatchNorm(ix, e, prod, bn)
		if err != nil {
			return 0, err
		}
		if ok {
			touched[prod], touched[bn] = true, true
			count++
		}
	}
	for _, add := range g.GetNode() {
		if add.GetOpType() != "Add" || !onnx.IsDefaultDomain(add.GetDomain()) || len(add.GetInput()) != 2 || touched[add] {
			continue
		}
		for side := range 2 {
			prod := ix.producer[add.GetInput()[side]]
			c := ix.floatConst(add.GetInput()[1-side])
			if prod == nil || c == nil || touched[prod] || ix.graphOf[prod] != g {
				continue
			}
			if len(ix.uses[prod.GetOutput()[0]]) != 1 || ix.outputs[prod.GetOutput()[0]] || len(ix.uses[c.name]) != 1 {
				continue
			}
			var ok bool
			var err error
			switch quantizerOf(prod).fold() {
			case foldChannels:
				ok, err = foldConvAdd(ix, e, prod, add, c)
			case foldGemm:
				ok, err = matMulAddToGemm(ix, e, prod, add, c)
			}
			if err != nil {
				return 0, err
			}
			if ok {
				touched[prod], touched[add] = true, true
				count++
				break
			}
		}
	}
	e.apply()
	if count > 0 {
		removeDeadConstants(ix.model)
	}
	return count, nil
}

// outChannels returns the constant weight of a layer (Conv,
// ConvTranspose), its number of output channels and the weight's
// output-channel axis; 0 when it cannot tell: a computed weight, or one
// whose output-channel axis does not hold every output channel (a grouped
// ConvTranspose's holds those of one group).
func outChannels(ix *index, conv *onnxpb.NodeProto) (*constant, int, int) {
	l, ok := onnx.LayerOf(conv)
	if !ok {
		return nil, 0, 0
	}
	w := ix.floatConst(input(conv, l.Weight))
	if w == nil || len(w.dims()) < 3 || len(ix.uses[w.name]) != 1 || w.overridable {
		return nil, 0, 0
	}
	axis, _, ok := l.WeightAxes(len(w.dims()))
	channels, _, _ := l.Channels(w.dims())
	if !ok || channels != w.dims()[axis] {
		return nil, 0, 0
	}
	return w, int(channels), axis
}

// convBias returns a Conv's bias values (zeros when it has none), or ok
// false when the bias is not a constant of its own.
func convBias(ix *index, conv *onnxpb.NodeProto, channels int) ([]float32, bool, error) {
	bias := make([]float32, channels)
	l, _ := onnx.LayerOf(conv)
	if input(conv, l.Bias) == "" {
		return bias, true, nil
	}
	old := ix.floatConst(input(conv, l.Bias))
	if old == nil || len(ix.uses[old.name]) != 1 || old.overridable {
		return nil, false, nil
	}
	ov, err := floatData(old)
	if err != nil || len(ov) != channels {
		return nil, false, err
	}
	return ov, true, nil
}

// setConvBias gives conv a new bias initializer.
func setConvBias(ix *index, e *editor, conv *onnxpb.NodeProto, bias []float32) error {
	name, err := e.addInit(ix.graphOf[conv], conv.GetOutput()[0]+"_bias", onnx.NewTensor([]int64{int64(len(bias))}, bias))
	if err != nil {
		return err
	}
	l, _ := onnx.LayerOf(conv)
	for len(conv.Input) <= l.Bias {
		conv.Input = append(conv.Input, "")
	}
	conv.Input[l.Bias] = name
	return nil
}

// foldConvAdd makes c the bias of conv (added to any bias it has) when c
// broadcasts along the output channels only.
func foldConvAdd(ix *index, e *editor, conv, add *onnxpb.NodeProto, c *constant) (bool, error) {
	w, channels, _ := outChannels(ix, conv)
	if w == nil {
		return false, nil
	}
	if !channelVector(c.dims(), len(w.dims()), channels) {
		return false, nil
	}
	ct, err := c.tensor()
	if err != nil {
		return false, err
	}
	cv, err := ct.Float32s()
	if err != nil {
		return false, err
	}
	bias, ok, err := convBias(ix, conv, channels)
	if err != nil || !ok {
		return false, err
	}
	for i := range bias {
		bias[i] += cv[i%len(cv)] // one value per channel, or one for all
	}
	if err := setConvBias(ix, e, conv, bias); err != nil {
		return false, err
	}
	conv.Output[0] = add.GetOutput()[0]
	e.remove(add)
	return true, nil
}

// foldBatchNorm folds an inference BatchNormalization into the Conv or
// ConvTranspose before it: with s = scale / sqrt(var + epsilon) per output
// channel, W' = W * s and b' = (b - mean) * s + B. Zero weights stay zero.
func foldBatchNorm(ix *index, e *editor, conv, bn *onnxpb.NodeProto) (bool, error) {
	if quantizerOf(conv).fold() != foldChannels {
		return false, nil
	}
	if onnx.IntAttr(bn, "training_mode", 0) != 0 || len(bn.GetInput()) != 5 || onnx.IntAttr(bn, "spatial", 1) != 1 {
		return false, nil
	}
	for _, out := range bn.GetOutput()[1:] {
		if out != "" && (len(ix.uses[out]) > 0 || ix.outputs[out]) {
			return false, nil
		}
	}
	w, channels, axis := outChannels(ix, conv)
	if w == nil {
		return false, nil
	}
	var p [4][]float32 // scale, B, mean, var
	for i := range p {
		c := ix.floatConst(bn.GetInput()[i+1])
		if c == nil || c.overridable {
			return false, nil
		}
		v, err := floatData(c)
		if err != nil || len(v) != channels {
			return false, err
		}
		p[i] = v
	}
	bias, ok, err := convBias(ix, conv, channels)
	if err != nil || !ok {
		return false, err
	}
	eps := float64(onnx.FloatAttr(bn, "epsilon", 1e-5))
	s := make([]float32, channels)
	for c := range s {
		s[c] = float32(float64(p[0][c]) / math.Sqrt(float64(p[3][c])+eps))
		bias[c] = (bias[c]-p[2][c])*s[c] + p[1][c]
	}
	wv, err := floatData(w)
	if err != nil {
		return false, err
	}
	outer, dim, inner := axisSplit(w.dims(), axis)
	for o := range outer {
		for c := range dim {
			for i := range inner {
				wv[(o*dim+c)*inner+i] *= s[c]
			}
		}
	}
	if err := w.w.Set(onnx.NewTensor(append([]int64{}, w.dims()...), wv)); err != nil {
		return false, err
	}
	if err := setConvBias(ix, e, conv, bias); err != nil {
		return false, err
	}
	conv.Output[0] = bn.GetOutput()[0]
	e.remove(bn)
	return true, nil
}

// channelVector reports whether a constant of dims, added to an output of
// the given rank, varies along dimension 1 only (with size channels) or
// not at all.
func channelVector(dims []int64, rank, channels int) bool {
	if len(dims) > rank {
		return false
	}
	n := 1
	for i, d := range dims {
		axis := rank - len(dims) + i
		if d != 1 && (axis != 1 || int(d) != channels) {
			return false
		}
		n *= int(d)
	}
	return n == 1 || n == channels
}

// matMulAddToGemm turns MatMul(A, B) + c into Gemm(A, B, c) when A is known
// to be 2-D, B is a constant [K, N] and c is [N] or [1, N].
func matMulAddToGemm(ix *index, e *editor, mm, add *onnxpb.NodeProto, c *constant) (bool, error) {
	l, _ := onnx.LayerOf(mm)
	b := ix.floatConst(input(mm, l.Weight))
	if b == nil || len(b.dims()) != 2 || !isRank2(ix, input(mm, l.Data)) {
		return false, nil
	}
	out, _, _ := l.WeightAxes(2)
	n := b.dims()[out]
	cd := c.dims()
	if !(len(cd) == 1 && cd[0] == n) && !(len(cd) == 2 && cd[0] == 1 && cd[1] == n) {
		return false, nil
	}
	gemm := newNode("Gemm", "", mm.GetName(), []string{input(mm, l.Data), input(mm, l.Weight), c.name}, []string{add.GetOutput()[0]})
	e.insertBefore(mm, gemm)
	e.remove(mm)
	e.remove(add)
	return true, nil
}

// isRank2 reports whether a tensor is known to be 2-D: declared so, or made
// by Flatten, Gemm or a Reshape to a constant 2-element shape.
func isRank2(ix *index, name string) bool {
	for _, ref := range ix.graphs {
		for _, vis := range [][]*onnxpb.ValueInfoProto{ref.Graph.GetInput(), ref.Graph.GetValueInfo(), ref.Graph.GetOutput()} {
			for _, vi := range vis {
				if vi.GetName() == name {
					if s := vi.GetType().GetTensorType().GetShape(); s != nil {
						return len(s.GetDim()) == 2
					}
				}
			}
		}
	}
	p := ix.producer[name]
	if p == nil {
		return false
	}
	switch p.GetOpType() {
	case "Flatten", "Gemm":
		return true
	case "Reshape":
		if len(p.GetInput()) < 2 {
			return false
		}
		s := ix.consts[p.GetInput()[1]]
		return s != nil && len(s.dims()) == 1 && s.dims()[0] == 2
	}
	return false
}
