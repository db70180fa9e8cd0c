package eval

import (
	"fmt"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// macKind says how an operator's multiply-accumulates follow from shapes.
type macKind int

const (
	// convMACs: output elements x weight dims[1] (input channels / group)
	// x kernel elements (weight dims[2:]).
	convMACs macKind = iota
	// convTransposeMACs: input elements x weight dims[1] (output channels
	// / group) x kernel elements.
	convTransposeMACs
	// matMulMACs: output elements x K, K the data's last dim.
	matMulMACs
	// gemmMACs: output elements x K, K = A dims[transA ? 0 : 1].
	gemmMACs
)

// macOp is a counted node: how its MACs follow from shapes, and its
// activation and weight inputs (the operands whose shapes the count needs
// besides the output), as the operator table gives them.
type macOp struct {
	kind      macKind
	data, wgt int
	layer     onnx.Layer
}

// macKinds are the kinds of layer of the operator table whose MACs are
// counted, float and integer forms alike. A DequantizeLinear feeding a
// MatMul or Conv needs no entry: the MatMul or Conv is counted.
var macKinds = map[onnx.LayerKind]macKind{
	onnx.LayerConv:          convMACs,
	onnx.LayerConvTranspose: convTransposeMACs,
	onnx.LayerMatMul:        matMulMACs,
	onnx.LayerGemm:          gemmMACs,
}

// macOpOf says how a node's MACs are counted; ok is false when they are not.
func macOpOf(n *onnxpb.NodeProto) (macOp, bool) {
	l, ok := onnx.LayerOf(n)
	if !ok {
		return macOp{}, false
	}
	k, ok := macKinds[l.Kind]
	return macOp{kind: k, data: l.Data, wgt: l.Weight, layer: l}, ok
}

// shapeProbe is a copy of the model that also outputs, through Shape
// nodes, the runtime shape of every tensor the counted nodes need: one run
// of it resolves every dynamic dimension, and no tensor data is copied
// out.
type shapeProbe struct {
	model *onnx.Model
	// shapeOf maps a tensor name to the probe output holding its shape.
	shapeOf map[string]string
	nodes   []*onnxpb.NodeProto
}

// newShapeProbe turns m itself into the probe (Evaluate has no further use
// for it: not copying it saves memory on big models).
func newShapeProbe(m *onnx.Model) *shapeProbe {
	p := &shapeProbe{model: m, shapeOf: map[string]string{}}
	g := p.model.Proto.GetGraph()
	for _, n := range g.GetNode() {
		op, ok := macOpOf(n)
		if !ok {
			continue
		}
		needs := []string{n.GetOutput()[0], input(n, op.wgt)}
		if op.kind == convTransposeMACs {
			needs[0] = input(n, op.data)
		}
		if op.kind == matMulMACs || op.kind == gemmMACs {
			needs[1] = input(n, op.data)
		}
		if needs[0] == "" || needs[1] == "" {
			continue // malformed: ONNX Runtime refuses it anyway
		}
		for _, name := range needs {
			p.expose(name)
		}
		p.nodes = append(p.nodes, n)
	}
	return p
}

// expose adds Shape(name) as a graph output, once per tensor.
func (p *shapeProbe) expose(name string) {
	if _, ok := p.shapeOf[name]; ok {
		return
	}
	g := p.model.Proto.GetGraph()
	out := p.model.UniqueName("kompress_shape_of_" + name)
	g.Node = append(g.Node, onnx.NewNode("Shape", out, []string{name}, []string{out}))
	g.Output = append(g.Output, onnx.ValueInfo(out, onnx.Int64, []onnx.Dim{nil}))
	p.shapeOf[name] = out
}

func input(n *onnxpb.NodeProto, i int) string {
	if i < len(n.GetInput()) {
		return n.GetInput()[i]
	}
	return ""
}

// countMACs runs the shape probe, made from m (which it edits), once on
// the data's first sample repeated to batch (the model's fixed batch, else
// 1), and returns the MACs of one sample, in total and by operator type.
func countMACs(name string, m *onnx.Model, data *feed.Data, batch int, opts feed.Options) (int64, map[string]int64, error) {
	p := newShapeProbe(m)
	if len(p.nodes) == 0 {
		return 0, map[string]int64{}, nil
	}
	// Basic optimization is enough for one run, and loads faster.
	opts.Optimization = ort.OptimizeBasic
	// feed.Open serializes it inline, or with its weights left in
	// their external data files (a model read with OpenFile).
	opts.Name = name + " (MACs probe)"
	probe, err := feed.Open(p.model, opts)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: building the MACs probe: %w", name, err)
	}
	defer probe.Close()
	in, err := data.Tensors(feed.Span{N: 1, Size: batch}.Samples())
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", name, err)
	}
	outs, err := probe.Run(in)
	if err != nil {
		return 0, nil, err
	}
	shape := func(tensor string) ([]int64, error) {
		var dims []int64
		ok := false
		if t := outs[p.shapeOf[tensor]]; t != nil {
			dims, ok = t.Data.([]int64)
		}
		if !ok {
			return nil, fmt.Errorf("%s: the MACs probe returned no shape for %q", name, tensor)
		}
		return dims, nil
	}
	total, byOp := int64(0), map[string]int64{}
	for i, n := range p.nodes {
		macs, err := nodeMACs(n, shape)
		if err != nil {
			return 0, nil, fmt.Errorf("%s: node %s: %w", name, onnx.NodeLabel(n, i), err)
		}
		macs /= int64(batch)
		total += macs
		byOp[n.GetOpType()] += macs
	}
	return total, byOp, nil
}

// nodeMACs counts one node's multiply-accumulates from runtime shapes.
func nodeMACs(n *onnxpb.NodeProto, shape func(string) ([]int64, error)) (int64, error) {
	op, _ := macOpOf(n)
	switch op.kind {
	case convMACs, convTransposeMACs:
		act := n.GetOutput()[0]
		if op.kind == convTransposeMACs {
			act = input(n, op.data)
		}
		a, err := shape(act)
		if err != nil {
			return 0, err
		}
		w, err := shape(input(n, op.wgt))
		if err != nil {
			return 0, err
		}
		if len(w) < 2 {
			return 0, fmt.Errorf("weight %q has shape %v, expected [M, C/group, kernel...]", input(n, op.wgt), w)
		}
		return product(a) * product(w[1:]), nil
	}
	y, err := shape(n.GetOutput()[0])
	if err != nil {
		return 0, err
	}
	a, err := shape(input(n, op.data))
	if err != nil {
		return 0, err
	}
	if len(a) == 0 {
		return 0, fmt.Errorf("input %q is a scalar", input(n, op.data))
	}
	if op.kind == gemmMACs && len(a) != 2 {
		return 0, fmt.Errorf("input A %q has shape %v, expected 2-D", input(n, op.data), a)
	}
	k := a[op.layer.DataAxis(len(a))]
	return product(y) * k, nil
}

func product(dims []int64) int64 {
	p := int64(1)
	for _, d := range dims {
		p *= d
	}
	return p
}
