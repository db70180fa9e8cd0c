package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Weights often reach their operator through a Reshape, Transpose or
// similar of a constant (mnist-8 reshapes its last weight before the
// MatMul). foldConstants computes such nodes once so the operator reads a
// constant weight, as ONNX Runtime's constant folding would at load time.

// foldableOps rearrange a constant's elements without arithmetic.
var foldableOps = map[string]bool{
	"Reshape": true, "Transpose": true, "Flatten": true, "Squeeze": true,
	"Unsqueeze": true, "Identity": true,
}

// foldConstants replaces every foldable node whose inputs are all
// constants by an initializer holding its output, repeating until none is
// left, and returns how many nodes it removed.
func foldConstants(m *onnx.Model) (int, error) {
	removed := 0
	for {
		ix := newIndex(m)
		e := newEditor(ix, nil)
		n := 0
		for _, ref := range ix.graphs {
			for _, node := range ref.Graph.GetNode() {
				ok, err := foldNode(ix, e, ref.Graph, node)
				if err != nil {
					return removed, fmt.Errorf("folding %s: %w", nodeLabel(node), err)
				}
				if ok {
					n++
				}
			}
		}
		if n == 0 {
			return removed, nil
		}
		e.apply()
		removeDeadConstants(m)
		removed += n
	}
}

func foldNode(ix *index, e *editor, g *onnxpb.GraphProto, n *onnxpb.NodeProto) (bool, error) {
	if !defaultDomain(n) || !foldableOps[n.GetOpType()] || len(n.GetOutput()) != 1 || len(n.GetInput()) == 0 {
		return false, nil
	}
	var in []*onnx.Tensor
	for _, name := range n.GetInput() {
		if name == "" {
			in = append(in, nil)
			continue
		}
		c := ix.consts[name]
		if c == nil || c.overridable {
			return false, nil
		}
		t, err := c.tensor()
		if err != nil {
			return false, err
		}
		in = append(in, t)
	}
	out, err := evalRearrange(n, in)
	if err != nil || out == nil {
		return false, err
	}
	tp, err := onnx.TensorToProto(out, n.GetOutput()[0])
	if err != nil {
		return false, err
	}
	e.inits[g] = append(e.inits[g], tp)
	e.remove(n)
	return true, nil
}

// evalRearrange computes a foldable node, or returns nil when its form is
// not handled (it then stays in the graph).
func evalRearrange(n *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
	dims := x.Dims
	switch n.GetOpType() {
	case "Identity":
		return x, nil
	case "Reshape":
		if len(in) < 2 || in[1] == nil {
			return nil, nil
		}
		shape, ok := in[1].Data.([]int64)
		if !ok {
			return nil, nil
		}
		out, err := reshapeDims(dims, shape, onnx.IntAttr(n, "allowzero", 0) != 0)
		if err != nil {
			return nil, err
		}
		return &onnx.Tensor{DType: x.DType, Dims: out, Data: x.Data}, nil
	case "Flatten":
		axis := int(onnx.IntAttr(n, "axis", 1))
		if axis < 0 {
			axis += len(dims)
		}
		outer := onnx.NumElements(dims[:axis])
		return &onnx.Tensor{DType: x.DType, Dims: []int64{int64(outer), int64(x.Len() / max(outer, 1))}, Data: x.Data}, nil
	case "Squeeze", "Unsqueeze":
		return nil, nil // rare on weights; left to ONNX Runtime
	case "Transpose":
		return transposeTensor(x, n)
	}
	return nil, nil
}

// reshapeDims resolves a Reshape target: 0 copies the input dimension
// (unless allowzero), -1 takes the rest.
func reshapeDims(in, shape []int64, allowZero bool) ([]int64, error) {
	out := make([]int64, len(shape))
	known, infer := int64(1), -1
	for i, d := range shape {
		switch {
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("reshape dim %d copies a missing input dimension", i)
			}
			out[i] = in[i]
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("reshape shape %v has two -1", shape)
			}
			infer = i
			continue
		default:
			out[i] = d
		}
		known *= out[i]
	}
	total := int64(onnx.NumElements(in))
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("reshape %v to %v", in, shape)
		}
		out[infer] = total / known
	} else if known != total {
		return nil, fmt.Errorf("reshape %v to %v changes the element count", in, shape)
	}
	return out, nil
}

// transposeTensor permutes a float32 tensor's dimensions (other types are
// left to ONNX Runtime).
func transposeTensor(x *onnx.Tensor, n *onnxpb.NodeProto) (*onnx.Tensor, error) {
	data, ok := x.Data.([]float32)
	if !ok {
		return nil, nil
	}
	rank := len(x.Dims)
	perm := make([]int, rank)
	for i := range perm {
		perm[i] = rank - 1 - i
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == "perm" {
			if len(a.GetInts()) != rank {
				return nil, fmt.Errorf("perm %v for rank %d", a.GetInts(), rank)
			}
			for i, p := range a.GetInts() {
				perm[i] = int(p)
			}
		}
	}
	outDims := make([]int64, rank)
	for i, p := range perm {
		outDims[i] = x.Dims[p]
	}
	inStride := make([]int, rank)
	s := 1
	for i := rank - 1; i >= 0; i-- {
		inStride[i] = s
		s *= int(x.Dims[i])
	}
	out := make([]float32, len(data))
	idx := make([]int, rank)
	for o := range out {
		src := 0
		for i := range rank {
			src += idx[i] * inStride[perm[i]]
		}
		out[o] = data[src]
		for i := rank - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < int(outDims[i]) {
				break
			}
			idx[i] = 0
		}
	}
	return &onnx.Tensor{DType: x.DType, Dims: outDims, Data: out}, nil
}
