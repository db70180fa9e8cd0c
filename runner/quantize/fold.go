package quantize

import (
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Rewrites that put a model in the shape ONNX Runtime's QDQ fusions expect,
// as onnxruntime's quantization pre-processing does: an Add of a constant
// after a Conv becomes the Conv's bias (so it is quantized to int32 inside
// QLinearConv instead of a float Add on a dequantized output), and
// MatMul + Add of a 2-D input becomes Gemm (QGemm keeps a float output,
// so logits are not quantized). Both are exact up to float rounding.

// foldBiases applies both rewrites to the main graph and returns the number
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
	for _, add := range g.GetNode() {
		if add.GetOpType() != "Add" || !defaultDomain(add) || len(add.GetInput()) != 2 || touched[add] {
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
			switch prod.GetOpType() {
			case "Conv":
				ok, err = foldConvAdd(ix, e, prod, add, c)
			case "MatMul":
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

// foldConvAdd makes c the bias of conv (added to any bias it has) when c
// broadcasts along the output channels only.
func foldConvAdd(ix *index, e *editor, conv, add *onnxpb.NodeProto, c *constant) (bool, error) {
	w := ix.floatConst(conv.GetInput()[1])
	if w == nil || len(w.dims()) < 3 {
		return false, nil
	}
	channels := int(w.dims()[0])
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
	bias := make([]float32, channels)
	for i := range bias {
		bias[i] = cv[i%len(cv)] // one value per channel, or one for all
	}
	if len(conv.GetInput()) > 2 && conv.GetInput()[2] != "" {
		old := ix.floatConst(conv.GetInput()[2])
		if old == nil || len(ix.uses[old.name]) != 1 {
			return false, nil
		}
		ot, err := old.tensor()
		if err != nil {
			return false, err
		}
		ov, err := ot.Float32s()
		if err != nil || len(ov) != channels {
			return false, err
		}
		for i := range bias {
			bias[i] += ov[i]
		}
	}
	name, err := e.addInit(ix.graphOf[conv], conv.GetOutput()[0]+"_bias", onnx.NewTensor([]int64{int64(channels)}, bias))
	if err != nil {
		return false, err
	}
	for len(conv.Input) < 3 {
		conv.Input = append(conv.Input, "")
	}
	conv.Input[2] = name
	conv.Output[0] = add.GetOutput()[0]
	e.remove(add)
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
	b := ix.floatConst(mm.GetInput()[1])
	if b == nil || len(b.dims()) != 2 || !isRank2(ix, mm.GetInput()[0]) {
		return false, nil
	}
	n := b.dims()[1]
	cd := c.dims()
	if !(len(cd) == 1 && cd[0] == n) && !(len(cd) == 2 && cd[0] == 1 && cd[1] == n) {
		return false, nil
	}
	gemm := newNode("Gemm", "", mm.GetName(), []string{mm.GetInput()[0], mm.GetInput()[1], c.name}, []string{add.GetOutput()[0]})
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
