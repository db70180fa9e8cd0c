package distill

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// param is one trained weight of the student. Its values live in data,
// one slice every replica's graph reads and the optimizer updates in
// place.
type param struct {
	w    *onnx.Weight
	data []float32
	dims []int
	// prunable weights (Conv filters, Gemm and MatMul matrices) keep
	// their zeros: mask is true where the weight was exactly zero at the
	// start, and those entries get no gradient and are reset to zero
	// after every update.
	prunable bool
	mask     []bool
}

// zeros counts the masked entries.
func (p *param) zeros() int {
	n := 0
	for _, z := range p.mask {
		if z {
			n++
		}
	}
	return n
}

// plan is what training needs to know about the student: the nodes in
// order, its trained weights and its constants.
type plan struct {
	model  *onnx.Model
	graph  *onnxpb.GraphProto
	opset  int64
	input  string
	inDims []int64 // declared input shape, -1 where dynamic
	output string
	nodes  []*onnxpb.NodeProto
	params []*param
	byName map[string]*param
	// consts holds every weight that is not trained (shapes, batch
	// normalization statistics, scalars, non-float32 tensors).
	consts map[string]*onnx.Tensor
}

// role is what a weight does for the node that reads it.
type role int

const (
	roleFrozen role = iota
	roleTrain
	rolePrune
)

// trainedLayers are the kinds of layer of the operator table whose
// weights distillation trains (its Conv, Gemm and MatMul kernels). A
// Gather's table stays frozen.
var trainedLayers = map[onnx.LayerKind]bool{onnx.LayerConv: true, onnx.LayerGemm: true, onnx.LayerMatMul: true}

// roleOf says how a weight read by input i of node n is trained. A
// layer's weight and bias are where the operator table puts them.
func roleOf(n *onnxpb.NodeProto, i int, elems int) role {
	if l, ok := onnx.LayerOf(n); ok && !l.Quantized && trainedLayers[l.Kind] {
		switch i {
		case l.Weight:
			return rolePrune
		case l.Bias:
			return roleTrain
		case l.Data:
			if l.Kind == onnx.LayerConv {
				return roleTrain
			}
			return rolePrune // a constant operand of a matrix product is a matrix like the weight
		}
		return roleFrozen
	}
	switch n.GetOpType() {
	case "BatchNormalization":
		if i == 1 || i == 2 {
			return roleTrain // scale and bias; mean and variance stay frozen
		}
	case "Add", "Sub", "Mul", "Div":
		// Biases and per-channel scales train; a scalar (x/255, x-0.5)
		// is part of the preprocessing, not of what the model learned.
		if elems > 1 {
			return roleTrain
		}
	}
	return roleFrozen
}

// newPlan checks that the student can be trained and collects its
// weights. Every operator it cannot train is named in one error, before
// any time is spent.
func newPlan(m *onnx.Model) (*plan, error) {
	g := m.Proto.GetGraph()
	p := &plan{model: m, graph: g, opset: m.Opset(""), byName: map[string]*param{}, consts: map[string]*onnx.Tensor{}}
	if err := p.findIO(); err != nil {
		return nil, err
	}
	if err := p.checkOps(); err != nil {
		return nil, err
	}
	return p, p.collectWeights()
}

func (p *plan) findIO() error {
	inits := map[string]bool{}
	for _, t := range p.graph.GetInitializer() {
		inits[t.GetName()] = true
	}
	var ins []*onnxpb.ValueInfoProto
	for _, vi := range p.graph.GetInput() {
		if !inits[vi.GetName()] {
			ins = append(ins, vi)
		}
	}
	if len(ins) != 1 {
		return fmt.Errorf("student %s has %d inputs; distillation feeds models with exactly one", p.model.Name, len(ins))
	}
	dt, dims, _, ok := onnx.TensorType(ins[0])
	if !ok || dt != onnx.Float {
		return fmt.Errorf("student %s input %q must be a float32 tensor with a known rank", p.model.Name, ins[0].GetName())
	}
	p.input, p.inDims = ins[0].GetName(), dims
	if len(p.graph.GetOutput()) == 0 {
		return fmt.Errorf("student %s has no outputs", p.model.Name)
	}
	p.output = p.graph.GetOutput()[0].GetName()
	return nil
}

// UnsupportedError lists the student's nodes that distillation cannot
// train.
type UnsupportedError struct {
	Nodes []string // "name (OpType)"
}

// Error names the unsupported operators, with up to three of their nodes
// each: the message must stay short enough for a pod's termination
// message whatever the model.
func (e *UnsupportedError) Error() string {
	var ops []string
	byOp := map[string][]string{}
	for _, n := range e.Nodes {
		i := strings.LastIndex(n, " (")
		op := strings.TrimSuffix(n[i+2:], ")")
		if byOp[op] == nil {
			ops = append(ops, op)
		}
		byOp[op] = append(byOp[op], n[:i])
	}
	parts := make([]string, len(ops))
	for i, op := range ops {
		names := byOp[op]
		list := strings.Join(names[:min(3, len(names))], ", ")
		if len(names) > 3 {
			list += fmt.Sprintf(" and %d more", len(names)-3)
		}
		parts[i] = fmt.Sprintf("%s ×%d (%s)", op, len(names), list)
	}
	return fmt.Sprintf("distillation cannot train %d node(s) of the student: %s; supported operators: %s",
		len(e.Nodes), strings.Join(parts, ", "), strings.Join(supportedOps(), ", "))
}

func (p *plan) checkOps() error {
	var bad []string
	for i, n := range p.graph.GetNode() {
		if n.GetOpType() == "Constant" && onnx.IsDefaultDomain(n.GetDomain()) {
			continue // its value is a weight
		}
		if _, ok := converters[n.GetOpType()]; !ok || !onnx.IsDefaultDomain(n.GetDomain()) {
			op := n.GetOpType()
			if d := n.GetDomain(); !onnx.IsDefaultDomain(d) {
				op = d + ":" + op
			}
			bad = append(bad, fmt.Sprintf("%s (%s)", onnx.NodeLabel(n, i), op))
			continue
		}
		p.nodes = append(p.nodes, n)
	}
	if len(bad) > 0 {
		return &UnsupportedError{Nodes: bad}
	}
	return nil
}

// collectWeights sorts the main graph's weights into trained params and
// frozen constants.
func (p *plan) collectWeights() error {
	for _, w := range p.model.Weights() {
		if w.Graph.Path != "" {
			continue // subgraph weights: their nodes were refused already
		}
		t, err := w.Tensor()
		if err != nil {
			return fmt.Errorf("student weight %q: %w", w.Name, err)
		}
		r := roleFrozen
		for _, u := range w.Uses {
			r = max(r, roleOf(u.Node, u.Input, w.NumElements()))
		}
		if r == roleFrozen || w.DType != onnx.Float {
			p.consts[w.Name] = t
			continue
		}
		vals, err := w.Float32s()
		if err != nil {
			return fmt.Errorf("student weight %q: %w", w.Name, err)
		}
		pr := &param{w: w, data: append([]float32(nil), vals...), prunable: r == rolePrune}
		for _, d := range w.Dims {
			pr.dims = append(pr.dims, int(d))
		}
		if pr.prunable {
			pr.mask = make([]bool, len(pr.data))
			for i, v := range pr.data {
				pr.mask[i] = v == 0
			}
		}
		p.params = append(p.params, pr)
		p.byName[w.Name] = pr
	}
	if len(p.params) == 0 {
		return fmt.Errorf("student %s has no float32 weights to train", p.model.Name)
	}
	return nil
}

// sparsity is the fraction of prunable weight entries that are zero now.
func (p *plan) sparsity() float64 {
	var zero, total int
	for _, pr := range p.params {
		if !pr.prunable {
			continue
		}
		total += len(pr.data)
		for _, v := range pr.data {
			if v == 0 {
				zero++
			}
		}
	}
	if total == 0 {
		return 0
	}
	return float64(zero) / float64(total)
}

func supportedOps() []string {
	ops := make([]string, 0, len(converters))
	for op := range converters {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}
