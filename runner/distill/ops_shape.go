package distill

// Converters of the shape operators: they move values around without
// arithmetic, or fold shape computations into constants.

import (
	"errors"
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func convertFlatten(b *builder, n *onnxpb.NodeProto) error {
	x, need, err := b.input(n, 0)
	if err != nil {
		return err
	}
	s := x.Shape()
	axis := int(onnx.IntAttr(n, "axis", 1))
	if axis < 0 {
		axis += s.Dims()
	}
	if axis < 0 || axis > s.Dims() {
		return fmt.Errorf("axis %d out of range for shape %v", axis, s)
	}
	outer := 1
	for _, d := range s[:axis] {
		outer *= d
	}
	y, err := G.Reshape(x, tensor.Shape{outer, s.TotalSize() / outer})
	if err != nil {
		return err
	}
	b.set(n, 0, &value{n: y, need: need})
	return nil
}

// reshapeTarget resolves an ONNX Reshape shape against the input shape
// (onnx.ReshapeDims). A shape that fixed the batch dimension when the model
// was exported (mnist-8 reshapes to the constant [1, 256]) is rewritten for
// the batch being trained: the first dimension becomes the batch when that
// is the only way the sizes agree.
func reshapeTarget(in []int, shape []int64, allowZero bool, batch int) ([]int, error) {
	out, err := onnx.ReshapeDims(int64Dims(in), shape, allowZero)
	if errors.Is(err, onnx.ErrReshapeCount) && len(shape) > 0 && shape[0] > 0 && len(in) > 0 && in[0] == batch && !slices.Contains(shape, -1) {
		fixed := append([]int64{-1}, shape[1:]...)
		if o, err2 := onnx.ReshapeDims(int64Dims(in), fixed, allowZero); err2 == nil && o[0] == int64(batch) {
			out, err = o, nil
		}
	}
	if err != nil {
		return nil, err
	}
	return intDims(out), nil
}

func convertReshape(b *builder, n *onnxpb.NodeProto) error {
	v, err := b.get(n.GetInput()[0])
	if err != nil {
		return err
	}
	var shape []int64
	if hasInput(n, 1) {
		if shape, err = b.constInts(n, 1); err != nil {
			return err
		}
	} else if shape, _ = onnx.IntsAttr(n, "shape"); shape == nil {
		return fmt.Errorf("no shape")
	}
	allowZero := onnx.IntAttr(n, "allowzero", 0) != 0
	if v.c != nil {
		out, err := reshapeTarget(intDims(v.c.Dims), shape, allowZero, -1)
		if err != nil {
			return err
		}
		c := *v.c
		c.Dims = int64Dims(out)
		b.set(n, 0, &value{c: &c})
		return nil
	}
	out, err := reshapeTarget(v.n.Shape(), shape, allowZero, b.batch)
	if err != nil {
		return err
	}
	y, err := G.Reshape(v.n, out)
	if err != nil {
		return err
	}
	b.set(n, 0, &value{n: y, need: v.need})
	return nil
}

func int64Dims(d []int) []int64 {
	out := make([]int64, len(d))
	for i, v := range d {
		out[i] = int64(v)
	}
	return out
}

// squeezeConverter handles Squeeze and Unsqueeze (axes as an attribute
// before opset 13, as an input since).
func squeezeConverter(unsqueeze bool) converter {
	return func(b *builder, n *onnxpb.NodeProto) error {
		v, err := b.get(n.GetInput()[0])
		if err != nil {
			return err
		}
		axes, _ := onnx.IntsAttr(n, "axes")
		if hasInput(n, 1) {
			if axes, err = b.constInts(n, 1); err != nil {
				return err
			}
		}
		var in []int
		if v.c != nil {
			in = intDims(v.c.Dims)
		} else {
			in = v.n.Shape()
		}
		out, err := squeezeShape(in, axes, unsqueeze)
		if err != nil {
			return err
		}
		if v.c != nil {
			c := *v.c
			c.Dims = int64Dims(out)
			b.set(n, 0, &value{c: &c})
			return nil
		}
		y, err := G.Reshape(v.n, out)
		if err != nil {
			return err
		}
		b.set(n, 0, &value{n: y, need: v.need})
		return nil
	}
}

func squeezeShape(in []int, axes []int64, unsqueeze bool) ([]int, error) {
	rank := len(in)
	if unsqueeze {
		rank += len(axes)
	}
	mark := make([]bool, rank)
	for _, a := range axes {
		if a < 0 {
			a += int64(rank)
		}
		if a < 0 || int(a) >= rank {
			return nil, fmt.Errorf("axis %d out of range", a)
		}
		mark[a] = true
	}
	var out []int
	if unsqueeze {
		j := 0
		for i := 0; i < rank; i++ {
			if mark[i] {
				out = append(out, 1)
			} else {
				out = append(out, in[j])
				j++
			}
		}
		return out, nil
	}
	for i, d := range in {
		if (len(axes) == 0 && d == 1) || mark[i] {
			if d != 1 {
				return nil, fmt.Errorf("cannot squeeze axis %d of size %d", i, d)
			}
			continue
		}
		out = append(out, d)
	}
	return out, nil
}

func convertTranspose(b *builder, n *onnxpb.NodeProto) error {
	x, need, err := b.input(n, 0)
	if err != nil {
		return err
	}
	rank := x.Shape().Dims()
	perm, ok := onnx.IntsAttr(n, "perm")
	if !ok {
		for i := rank - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	if len(perm) != rank {
		return fmt.Errorf("perm %v for rank %d", perm, rank)
	}
	axes := make([]int, rank)
	identity := true
	for i, p := range perm {
		axes[i] = int(p)
		identity = identity && int(p) == i
	}
	y := x
	if !identity {
		if y, err = G.Transpose(x, axes...); err != nil {
			return err
		}
	}
	b.set(n, 0, &value{n: y, need: need})
	return nil
}

func convertConcat(b *builder, n *onnxpb.NodeProto) error {
	axis := int(onnx.IntAttr(n, "axis", 0))
	allConst := true
	for _, in := range n.GetInput() {
		v, err := b.get(in)
		if err != nil {
			return err
		}
		allConst = allConst && v.c != nil
	}
	if allConst {
		return foldConcat(b, n, axis)
	}
	var nodes []*G.Node
	need := false
	for i := range n.GetInput() {
		x, nd, err := b.input(n, i)
		if err != nil {
			return err
		}
		nodes = append(nodes, x)
		need = need || nd
	}
	if axis < 0 {
		axis += nodes[0].Shape().Dims()
	}
	y := nodes[0]
	if len(nodes) > 1 {
		var err error
		if y, err = G.Concat(axis, nodes...); err != nil {
			return err
		}
	}
	b.set(n, 0, &value{n: y, need: need})
	return nil
}

// foldConcat joins 1-D integer constants (shape computations).
func foldConcat(b *builder, n *onnxpb.NodeProto, axis int) error {
	var out []int64
	for i := range n.GetInput() {
		v, err := b.constInts(n, i)
		if err != nil {
			return err
		}
		out = append(out, v...)
	}
	if axis != 0 && axis != -1 {
		return fmt.Errorf("constant concatenation along axis %d is not supported", axis)
	}
	b.set(n, 0, &value{c: int64Tensor(out)})
	return nil
}

func convertIdentity(b *builder, n *onnxpb.NodeProto) error {
	if err := onlyFirstOutput(n); err != nil {
		return err
	}
	v, err := b.get(n.GetInput()[0])
	if err != nil {
		return err
	}
	b.set(n, 0, v)
	return nil
}

// convertShape folds Shape into a constant: every shape is known when
// the graph is built for a batch size.
func convertShape(b *builder, n *onnxpb.NodeProto) error {
	v, err := b.get(n.GetInput()[0])
	if err != nil {
		return err
	}
	var dims []int
	if v.c != nil {
		dims = intDims(v.c.Dims)
	} else {
		dims = v.n.Shape()
	}
	start, end := int(onnx.IntAttr(n, "start", 0)), int(onnx.IntAttr(n, "end", int64(len(dims))))
	if start < 0 {
		start += len(dims)
	}
	if end < 0 {
		end += len(dims)
	}
	start, end = max(0, min(start, len(dims))), max(0, min(end, len(dims)))
	b.set(n, 0, &value{c: int64Tensor(int64Dims(dims[start:max(start, end)]))})
	return nil
}

// convertGather folds Gather on integer constants (shape computations).
func convertGather(b *builder, n *onnxpb.NodeProto) error {
	data, err := b.constInts(n, 0)
	if err != nil {
		return fmt.Errorf("gathering from activations is not supported: %w", err)
	}
	idx, err := b.constInts(n, 1)
	if err != nil {
		return err
	}
	v, _ := b.get(n.GetInput()[0])
	iv, _ := b.get(n.GetInput()[1])
	if len(v.c.Dims) != 1 || onnx.IntAttr(n, "axis", 0) != 0 {
		return fmt.Errorf("only gathering from a 1-D constant is supported")
	}
	out := make([]int64, len(idx))
	for i, j := range idx {
		if j < 0 {
			j += int64(len(data))
		}
		if j < 0 || int(j) >= len(data) {
			return fmt.Errorf("index %d out of range", idx[i])
		}
		out[i] = data[j]
	}
	t := int64Tensor(out)
	t.Dims = iv.c.Dims
	b.set(n, 0, &value{c: t})
	return nil
}

// convertCast passes float activations through (a cast to float32) and
// folds integer constants.
func convertCast(b *builder, n *onnxpb.NodeProto) error {
	v, err := b.get(n.GetInput()[0])
	if err != nil {
		return err
	}
	to := onnx.IntAttr(n, "to", 0)
	switch {
	case v.c != nil && (to == int64(onnxpb.TensorProto_INT64) || to == int64(onnxpb.TensorProto_INT32)):
		ints, err := tensorInts(v.c)
		if err != nil {
			return err
		}
		t := int64Tensor(ints)
		t.Dims = v.c.Dims
		b.set(n, 0, &value{c: t})
	case v.n != nil && to == int64(onnxpb.TensorProto_FLOAT):
		b.set(n, 0, v)
	default:
		return fmt.Errorf("cast to type %d is not supported", to)
	}
	return nil
}
