package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Weights often reach their operator through a Reshape, Transpose or
// similar of a constant (mnist-8 reshapes its last weight before the
// MatMul). foldConstants computes such nodes once so the operator reads a
// constant weight, as ONNX Runtime's constant folding would at load time;
// the registry says which operators it computes (foldConstant).

// foldConstants replaces every node the registry folds whose inputs are all
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
					return removed, fmt.Errorf("folding %s: %w", onnx.Label(node), err)
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
	eval := quantizerOf(n).foldConstant()
	if eval == nil || len(n.GetOutput()) != 1 || len(n.GetInput()) == 0 {
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
	out, err := eval(n, in)
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

// transposeTensor computes a Transpose of a float32 tensor (other types
// are left to ONNX Runtime).
func transposeTensor(n *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error) {
	x := in[0]
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
