package distill

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// value is a tensor of the student while its graph is built: a node of
// the gorgonia graph, or a constant known at build time (shapes, axes and
// frozen weights, which operators such as Reshape need as numbers).
type value struct {
	n *G.Node
	c *onnx.Tensor
	// need is true when the value depends on a trained weight, so its
	// gradient is wanted.
	need bool
}

// builder turns the student's ONNX nodes into one gorgonia graph for a
// fixed batch size.
type builder struct {
	p     *plan
	g     *G.ExprGraph
	dt    tensor.Dtype
	batch int
	vals  map[string]*value
	// params are the graph nodes of the plan's params (nil when a param
	// is not read by this graph); paramVals their bound values.
	params    []*G.Node
	paramVals []*tensor.Dense
}

// net is a built graph: the student's forward pass, and with a loss its
// gradients.
type net struct {
	g *G.ExprGraph
	x *G.Node
	// output is the model's output, logits what the loss reads: the
	// same node unless the student ends in Softmax.
	output *G.Node
	logits *G.Node
	// k is the number of logits per sample.
	k int
	// params/paramVals parallel plan.params; nil where unused.
	params    []*G.Node
	paramVals []*tensor.Dense
}

// buildForward builds the student's forward graph for batch samples of
// the given sample shape.
func (p *plan) buildForward(batch int, sample []int, dt tensor.Dtype) (*net, error) {
	b := &builder{p: p, g: G.NewGraph(), dt: dt, batch: batch, vals: map[string]*value{},
		params: make([]*G.Node, len(p.params)), paramVals: make([]*tensor.Dense, len(p.params))}
	shape := append([]int{batch}, sample...)
	x := G.NewTensor(b.g, dt, len(shape), G.WithShape(shape...), G.WithName("input:"+p.input),
		G.WithValue(tensor.New(tensor.Of(dt), tensor.WithShape(shape...))))
	b.vals[p.input] = &value{n: x}
	for _, n := range p.nodes {
		if err := b.node(n); err != nil {
			return nil, fmt.Errorf("student node %s (%s): %w", n.GetName(), n.GetOpType(), err)
		}
	}
	out, ok := b.vals[p.output]
	if !ok || out.n == nil {
		return nil, fmt.Errorf("student output %q is not computed from its input", p.output)
	}
	if !out.need {
		return nil, fmt.Errorf("student output %q does not depend on any trainable weight", p.output)
	}
	flat := func(n *G.Node) (*G.Node, int, error) {
		s := n.Shape()
		if len(s) == 0 || s[0] != batch {
			return nil, 0, fmt.Errorf("student output %q has shape %v: want the batch (%d) first", p.output, s, batch)
		}
		k := s.TotalSize() / batch
		if len(s) == 2 {
			return n, k, nil
		}
		n, err := G.Reshape(n, tensor.Shape{batch, k})
		return n, k, err
	}
	output, k, err := flat(out.n)
	if err != nil {
		return nil, err
	}
	// A student that ends in Softmax outputs probabilities: the loss
	// takes the logits before it.
	logits := output
	if in := b.softmaxInput(); in != nil {
		if logits, _, err = flat(in.n); err != nil {
			return nil, err
		}
	}
	return &net{g: b.g, x: x, output: output, logits: logits, k: k, params: b.params, paramVals: b.paramVals}, nil
}

// softmaxInput returns the input of the student's last node when that
// node is a Softmax or LogSoftmax over all of a sample's values; nil
// otherwise.
func (b *builder) softmaxInput() *value {
	for _, n := range b.p.nodes {
		if len(n.GetOutput()) == 0 || n.GetOutput()[0] != b.p.output {
			continue
		}
		if op := n.GetOpType(); op != "Softmax" && op != "LogSoftmax" {
			return nil
		}
		in := b.vals[n.GetInput()[0]]
		if in == nil || in.n == nil {
			return nil
		}
		rank := in.n.Shape().Dims()
		def := int64(-1)
		if b.p.opset < 13 {
			def = 1
		}
		axis := onnx.IntAttr(n, "axis", def)
		if axis < 0 {
			axis += int64(rank)
		}
		// Over every value of a sample: the last axis of [N, K], or axis
		// 1 before opset 13 (which flattened the rest).
		if axis == int64(rank-1) && rank == 2 || b.p.opset < 13 && axis == 1 {
			return in
		}
		return nil
	}
	return nil
}

func (b *builder) node(n *onnxpb.NodeProto) error {
	conv := converters[n.GetOpType()]
	return conv(b, n)
}

// get returns the value of a tensor by name.
func (b *builder) get(name string) (*value, error) {
	if v, ok := b.vals[name]; ok {
		return v, nil
	}
	if pr, ok := b.p.byName[name]; ok {
		i := b.paramIndex(pr)
		v := &value{n: b.paramNode(i), need: true}
		b.vals[name] = v
		return v, nil
	}
	if c, ok := b.p.consts[name]; ok {
		v := &value{c: c}
		b.vals[name] = v
		return v, nil
	}
	return nil, fmt.Errorf("input %q is neither computed before nor a weight", name)
}

func (b *builder) paramIndex(pr *param) int {
	for i, q := range b.p.params {
		if q == pr {
			return i
		}
	}
	panic("param not in plan")
}

// paramNode makes the graph node of param i. In float32 it reads the
// param's own slice, shared with every other replica; in float64
// (gradient checks) a converted copy.
func (b *builder) paramNode(i int) *G.Node {
	pr := b.p.params[i]
	var t *tensor.Dense
	if b.dt == tensor.Float32 {
		t = tensor.New(tensor.WithShape(pr.dims...), tensor.WithBacking(pr.data))
	} else {
		d := make([]float64, len(pr.data))
		for j, v := range pr.data {
			d[j] = float64(v)
		}
		t = tensor.New(tensor.WithShape(pr.dims...), tensor.WithBacking(d))
	}
	n := b.tensorNode(t, "param:"+pr.w.Name)
	b.params[i], b.paramVals[i] = n, t
	return n
}

func (b *builder) tensorNode(t *tensor.Dense, name string) *G.Node {
	if t.Dims() == 0 {
		return G.NewScalar(b.g, b.dt, G.WithName(name), G.WithValue(t))
	}
	return G.NewTensor(b.g, b.dt, t.Dims(), G.WithShape(t.Shape()...), G.WithName(name), G.WithValue(t))
}

// input returns input i of n as a graph node (constants become frozen
// nodes).
func (b *builder) input(n *onnxpb.NodeProto, i int) (*G.Node, bool, error) {
	v, err := b.get(n.GetInput()[i])
	if err != nil {
		return nil, false, err
	}
	if v.n != nil {
		return v.n, v.need, nil
	}
	vals, err := v.c.Float32s()
	if err != nil {
		return nil, false, fmt.Errorf("input %q: %w", n.GetInput()[i], err)
	}
	v.n = b.tensorNode(b.dense(intDims(v.c.Dims), vals), "const:"+n.GetInput()[i])
	return v.n, false, nil
}

// dense makes a tensor of the graph's element type from float32 values
// (a scalar when dims is empty).
func (b *builder) dense(dims []int, vals []float32) *tensor.Dense {
	if b.dt == tensor.Float32 {
		if len(dims) == 0 {
			return tensor.New(tensor.FromScalar(vals[0]))
		}
		return tensor.New(tensor.WithShape(dims...), tensor.WithBacking(append([]float32(nil), vals...)))
	}
	d := make([]float64, len(vals))
	for j, x := range vals {
		d[j] = float64(x)
	}
	if len(dims) == 0 {
		return tensor.New(tensor.FromScalar(d[0]))
	}
	return tensor.New(tensor.WithShape(dims...), tensor.WithBacking(d))
}

// constNode adds a frozen node holding vals.
func (b *builder) constNode(name string, dims []int, vals []float32) *G.Node {
	return b.tensorNode(b.dense(dims, vals), name)
}

// hasInput reports whether n has a non-empty input i (ONNX marks omitted
// optional inputs with "").
func hasInput(n *onnxpb.NodeProto, i int) bool {
	return i < len(n.GetInput()) && n.GetInput()[i] != ""
}

// constInts returns input i of n as integers known at build time.
func (b *builder) constInts(n *onnxpb.NodeProto, i int) ([]int64, error) {
	v, err := b.get(n.GetInput()[i])
	if err != nil {
		return nil, err
	}
	if v.c == nil {
		return nil, fmt.Errorf("input %q must be a constant known before training", n.GetInput()[i])
	}
	return tensorInts(v.c)
}

func tensorInts(t *onnx.Tensor) ([]int64, error) {
	switch d := t.Data.(type) {
	case []int64:
		return d, nil
	case []int32:
		out := make([]int64, len(d))
		for i, v := range d {
			out[i] = int64(v)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want an integer tensor, got %v", t.DType)
}

// set records output i of n.
func (b *builder) set(n *onnxpb.NodeProto, i int, v *value) {
	if i < len(n.GetOutput()) && n.GetOutput()[i] != "" {
		b.vals[n.GetOutput()[i]] = v
	}
}

func intDims(d []int64) []int {
	out := make([]int, len(d))
	for i, v := range d {
		out[i] = int(v)
	}
	return out
}

func int64Tensor(v []int64) *onnx.Tensor {
	return onnx.NewTensor([]int64{int64(len(v))}, v)
}
