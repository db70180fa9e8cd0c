package structured

import (
	"fmt"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// compensate folds the average contribution of every removed channel into
// the bias of the layer that mixed it in. A removed channel is not zero:
// after a bias, a BatchNormalization or an activation it usually holds an
// offset, and the next layer added W*offset to every output. Adding
// W*mean to that layer's bias keeps the expected output where it was, so
// only the channel's variation is lost (the bias correction of channel
// pruning). means gives the mean of each position along a tensor's
// channel axis over the calibration samples.
func (a *analysis) compensate(p *plan, means map[string][]float64) error {
	for _, e := range a.edits {
		if !e.mixing {
			continue
		}
		keep := map[int]bool{}
		for _, q := range positions(a.kept(p, e.lay), e.lay.block) {
			keep[q] = true
		}
		if len(keep) == e.lay.size() {
			continue
		}
		lay, _ := onnx.LayerOf(e.node)
		mean := means[input(e.node, lay.Data)]
		if len(mean) != e.lay.size() {
			continue // no activations measured for this input
		}
		delta, err := a.delta(e, keep, mean)
		if err != nil {
			return err
		}
		if slices.ContainsFunc(delta, func(d float64) bool { return d != 0 }) {
			if err := a.addToBias(e.node, delta); err != nil {
				return err
			}
		}
	}
	return nil
}

// delta is, per output unit of e's layer, the contribution of the removed
// input channels at their mean value.
func (a *analysis) delta(e edit, keep map[int]bool, mean []float64) ([]float64, error) {
	w := a.weight(e.node, e.input)
	vals, err := w.Float32s()
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", w.Name, err)
	}
	dims := w.Dims
	// outAxis is the weight's output-unit axis (the operator table's);
	// scale spreads the sum over the kernel to one output element.
	lay, _ := onnx.LayerOf(e.node)
	outAxis, _, ok := lay.WeightAxes(len(dims))
	if !ok {
		return nil, fmt.Errorf("%s: weight %q has shape %v", e.node.GetOpType(), w.Name, dims)
	}
	scale := 1.0
	switch lay.Kind {
	case onnx.LayerConvTranspose:
		strides, _ := onnx.IntsAttr(e.node, "strides")
		for _, s := range strides {
			scale /= float64(s) // each output element sees prod(kernel)/prod(strides) taps on average
		}
	case onnx.LayerGemm:
		if al := onnx.FindAttr(e.node, "alpha"); al != nil {
			scale = float64(al.GetF())
		}
		if be := onnx.FindAttr(e.node, "beta"); be != nil && be.GetF() != 0 {
			scale /= float64(be.GetF())
		}
	}
	delta := make([]float64, dims[outAxis])
	strides := make([]int, len(dims))
	st := 1
	for i := len(dims) - 1; i >= 0; i-- {
		strides[i] = st
		st *= int(dims[i])
	}
	for i, v := range vals {
		in := (i / strides[e.axis]) % int(dims[e.axis])
		if keep[in] {
			continue
		}
		out := (i / strides[outAxis]) % int(dims[outAxis])
		delta[out] += float64(v) * mean[in] * scale
	}
	return delta, nil
}

// addToBias adds delta to the bias of n: its bias input in the operator
// table (Conv, ConvTranspose and Gemm; created when absent), or the
// constant of the Add that alone follows a layer without one (MatMul).
// Layers without a place for it are left as they are.
func (a *analysis) addToBias(n *onnxpb.NodeProto, delta []float64) error {
	lay, _ := onnx.LayerOf(n)
	node, i := n, lay.Bias
	if lay.Bias < 0 {
		add := a.biasAdd(n, len(delta))
		if add == nil {
			return nil
		}
		node, i = add, 1
		if a.weight(add, 0) != nil {
			i = 0
		}
	}
	w := a.weight(node, i)
	if input(node, i) == "" {
		return a.newBias(node, delta)
	}
	if w == nil || w.NumElements() != len(delta) || len(w.Uses) != 1 {
		return nil // computed, broadcast or shared: leave it
	}
	t, err := w.Tensor()
	if err != nil {
		return err
	}
	vals, err := t.Float32s()
	if err != nil {
		return err
	}
	sum := make([]float32, len(vals))
	for j := range vals {
		sum[j] = vals[j] + float32(delta[j])
	}
	nt, err := onnx.FromFloat32s(t.DType, t.Dims, sum)
	if err != nil {
		return err
	}
	return w.Set(nt)
}

// biasAdd finds the Add that adds a constant of units values to n's
// output, when it is n's only reader.
func (a *analysis) biasAdd(n *onnxpb.NodeProto, units int) *onnxpb.NodeProto {
	cs := a.ix.Consumers[output(n, 0)]
	if len(cs) != 1 || cs[0].OpType() != "Add" || cs[0].GraphPath != "" {
		return nil
	}
	add := cs[0].Node
	if w := a.weight(add, 1-cs[0].Input); w != nil && w.NumElements() == units {
		return add
	}
	return nil
}

// newBias gives a Conv, ConvTranspose or Gemm without a bias one holding
// delta, sliced like the layer's output channels.
func (a *analysis) newBias(n *onnxpb.NodeProto, delta []float64) error {
	vals := make([]float32, len(delta))
	for j, d := range delta {
		vals[j] = float32(d)
	}
	name, err := a.addWeight(output(n, 0)+"_bias", onnx.NewTensor([]int64{int64(len(vals))}, vals))
	if err != nil {
		return err
	}
	lay, _ := onnx.LayerOf(n)
	for len(n.Input) < lay.Bias {
		n.Input = append(n.Input, "")
	}
	n.Input = append(n.Input[:lay.Bias], name)
	a.weights[name] = a.m.Weight(name)
	if l := a.lay[output(n, 0)]; l != nil && l.size() == len(delta) {
		a.edits = append(a.edits, edit{kind: sliceWeight, node: n, input: lay.Bias, axis: 0, lay: l})
	}
	return nil
}

// addWeight stores t as a new weight of the main graph, the way the model
// keeps its weights: a Constant node when it has no initializers (as
// Paddle exports do), else an initializer, declared as an input too in
// models of IR version 3, which must.
func (a *analysis) addWeight(base string, t *onnx.Tensor) (string, error) {
	if len(a.g.GetInitializer()) == 0 {
		name := a.m.UniqueName(base)
		tp, err := onnx.TensorToProto(t, name)
		if err != nil {
			return "", err
		}
		a.g.Node = append([]*onnxpb.NodeProto{onnx.NewNode("Constant", name, nil, []string{name}, onnx.AttrTensor("value", tp))}, a.g.Node...)
		return name, nil
	}
	name, err := a.m.AddInitializer(a.g, base, t)
	if err != nil {
		return "", err
	}
	if a.m.Proto.GetIrVersion() < 4 {
		a.g.Input = append(a.g.Input, onnx.ValueInfo(name, t.DType, dimsOf(t.Dims)))
	}
	return name, nil
}
