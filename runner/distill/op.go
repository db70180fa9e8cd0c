package distill

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// float is the element type kernels are written for: float32 trains,
// float64 checks gradients against finite differences.
type float interface{ ~float32 | ~float64 }

// kernel is one operation of the training graph, with its own forward
// (and, for differentiable ones, backward) code. Every operator that does
// real arithmetic is a kernel rather than a gorgonia built-in: gorgonia's
// versions take the softmax row maximum from the wrong element, average
// pooling divides by the width, and broadcasting follows its own rules
// rather than ONNX's. gorgonia still owns the graph, the symbolic
// differentiation and the tape machine that runs it.
type kernel struct {
	name string
	// fwd computes the output from the inputs into out, overwriting it.
	fwd func(in []*tensor.Dense, out *tensor.Dense) error
	// grad builds the gradient of each input from the output gradient;
	// nil for an operation that is not differentiated (the backward
	// kernels themselves). Entries for inputs that need no gradient are nil.
	grad func(in G.Nodes, out, dy *G.Node, need []bool) (G.Nodes, error)
	// need says which inputs need a gradient: those that are, or depend
	// on, trained weights. Computing the others would waste time (the
	// image input of the first convolution above all).
	need []bool

	typ      hm.Type
	outShape tensor.Shape
	id       uint64
	// out is the op's own output buffer, reused from step to step: an
	// op instance is one node of one graph, computed once per run.
	out *tensor.Dense
}

var kernelIDs atomic.Uint64

// apply adds a kernel node to the graph of its inputs. shape is the
// output shape (a scalar when empty).
func apply(k *kernel, shape tensor.Shape, ins ...*G.Node) (*G.Node, error) {
	k.id = kernelIDs.Add(1)
	k.outShape = shape
	a := hm.TypeVariable('a')
	types := make(hm.Types, 0, len(ins)+1)
	for _, n := range ins {
		types = append(types, typeOfRank(n.Shape().Dims(), a))
	}
	types = append(types, typeOfRank(len(shape), a))
	k.typ = hm.NewFnType(types...)
	if k.need == nil {
		k.need = make([]bool, len(ins))
	}
	n, err := G.ApplyOp(k, ins...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.name, err)
	}
	return n, nil
}

func typeOfRank(rank int, a hm.TypeVariable) hm.Type {
	if rank == 0 {
		return a
	}
	return G.TensorType{Dims: rank, Of: a}
}

func (k *kernel) Arity() int     { return len(k.need) }
func (k *kernel) Type() hm.Type  { return k.typ }
func (k *kernel) String() string { return fmt.Sprintf("%s#%d", k.name, k.id) }
func (k *kernel) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return k.outShape.Clone(), nil
}
func (k *kernel) ReturnsPtr() bool     { return true }
func (k *kernel) CallsExtern() bool    { return false }
func (k *kernel) OverwritesInput() int { return -1 }
func (k *kernel) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "kompress.%s#%d", k.name, k.id)
}
func (k *kernel) Hashcode() uint32 {
	h := fnv.New32a()
	k.WriteHash(h)
	return h.Sum32()
}

// Do runs the forward kernel.
func (k *kernel) Do(vals ...G.Value) (G.Value, error) {
	ins := make([]*tensor.Dense, len(vals))
	var dt tensor.Dtype
	for i, v := range vals {
		d, err := asDense(v)
		if err != nil {
			return nil, fmt.Errorf("%s input %d: %w", k.name, i, err)
		}
		ins[i] = d
		if i == 0 {
			dt = d.Dtype()
		}
	}
	shape := k.outShape
	if len(shape) == 0 {
		shape = tensor.Shape{1}
	}
	// Reuse the buffer unless an operator downstream changed it in place
	// (gorgonia's may, once this value is no longer needed).
	if k.out == nil || k.out.Dtype() != dt || k.out.IsMaterializable() || !k.out.Shape().Eq(shape) {
		k.out = tensor.New(tensor.Of(dt), tensor.WithShape(shape.Clone()...))
	}
	if err := k.fwd(ins, k.out); err != nil {
		return nil, fmt.Errorf("%s: %w", k.name, err)
	}
	if len(k.outShape) == 0 {
		switch d := k.out.Data().(type) {
		case []float32:
			return G.NewF32(d[0]), nil
		case []float64:
			return G.NewF64(d[0]), nil
		}
	}
	return k.out, nil
}

// DiffWRT reports which inputs get a gradient.
func (k *kernel) DiffWRT(int) []bool {
	if k.grad == nil {
		return make([]bool, len(k.need))
	}
	return k.need
}

// SymDiff builds the gradient nodes.
func (k *kernel) SymDiff(in G.Nodes, out, dy *G.Node) (G.Nodes, error) {
	if k.grad == nil {
		return nil, fmt.Errorf("%s is not differentiable", k.name)
	}
	return k.grad(in, out, dy, k.need)
}

// asDense turns a value into a contiguous dense tensor: scalars become
// one-element tensors, views are materialized.
func asDense(v G.Value) (*tensor.Dense, error) {
	switch x := v.(type) {
	case *tensor.Dense:
		if x.IsScalar() {
			switch s := x.Data().(type) {
			case float32:
				return tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{s})), nil
			case float64:
				return tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{s})), nil
			}
		}
		if x.IsMaterializable() {
			return x.Materialize().(*tensor.Dense), nil
		}
		return x, nil
	case *G.F32:
		return tensor.New(tensor.WithShape(1), tensor.WithBacking([]float32{float32(*x)})), nil
	case *G.F64:
		return tensor.New(tensor.WithShape(1), tensor.WithBacking([]float64{float64(*x)})), nil
	}
	return nil, fmt.Errorf("unsupported value %T", v)
}

// data returns a tensor's elements as T.
func data[T float](t *tensor.Dense) []T {
	return t.Data().([]T)
}

// dispatch runs f with the element type of t.
func dispatch(t *tensor.Dense, f32 func() error, f64 func() error) error {
	switch t.Dtype() {
	case tensor.Float32:
		return f32()
	case tensor.Float64:
		return f64()
	}
	return fmt.Errorf("element type %v: want float32 or float64", t.Dtype())
}
