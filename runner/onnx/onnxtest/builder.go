package onnxtest

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Builder makes small models for tests, one node at a time: graph
// inputs, initializers and nodes in the order they are added (which must
// be topological). A Builder also makes subgraphs, for the attributes of
// If and Loop nodes (Graph).
type Builder struct {
	// Name names the graph and the model; empty means "test".
	Name   string
	Nodes  []*onnxpb.NodeProto
	Inits  []*onnxpb.TensorProto
	Inputs []*onnxpb.ValueInfoProto
	// Rand is seeded by NewBuilder, for weights the test draws.
	Rand *rand.Rand
}

// NewBuilder returns an empty builder whose Rand is seeded with seed.
func NewBuilder(seed uint64) *Builder { return &Builder{Rand: rand.New(rand.NewPCG(seed, seed))} }

// Input adds a float graph input and returns its name.
func (b *Builder) Input(name string, dims ...onnx.Dim) string {
	return b.InputOf(name, onnx.Float, dims...)
}

// InputOf adds a graph input of element type dt and returns its name.
func (b *Builder) InputOf(name string, dt onnx.DataType, dims ...onnx.Dim) string {
	b.Inputs = append(b.Inputs, onnx.ValueInfo(name, dt, dims))
	return name
}

// Init adds t as an initializer and returns its name.
func (b *Builder) Init(name string, t *onnx.Tensor) string {
	tp, err := onnx.TensorToProto(t, name)
	if err != nil {
		panic(err)
	}
	b.Inits = append(b.Inits, tp)
	return name
}

// Constant adds a Constant node (called name+"_const") holding t, and
// returns name, its output.
func (b *Builder) Constant(name string, t *onnx.Tensor) string {
	tp, err := onnx.TensorToProto(t, "")
	if err != nil {
		panic(err)
	}
	tp.Name = nil
	return b.NamedNode("Constant", name+"_const", nil, []string{name}, onnx.AttrTensor("value", tp))
}

// Node adds a node writing one output, out, and returns out. The node is
// called out too.
func (b *Builder) Node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.NamedNode(op, out, inputs, []string{out}, attrs...)
}

// NamedNode adds a node called name writing outputs, and returns the
// first output.
func (b *Builder) NamedNode(op, name string, inputs, outputs []string, attrs ...*onnxpb.AttributeProto) string {
	b.Nodes = append(b.Nodes, onnx.NewNode(op, name, inputs, outputs, attrs...))
	if len(outputs) == 0 {
		return ""
	}
	return outputs[0]
}

// Uniform returns n values drawn from Rand, uniform in [-1, 1).
func (b *Builder) Uniform(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*b.Rand.Float64() - 1)
	}
	return v
}

// Graph makes the graph with the given float outputs: a model's, or a
// subgraph for an If or Loop attribute.
func (b *Builder) Graph(outputs ...string) *onnxpb.GraphProto {
	var outs []*onnxpb.ValueInfoProto
	for _, o := range outputs {
		outs = append(outs, onnx.ValueInfo(o, onnx.Float, nil))
	}
	return &onnxpb.GraphProto{
		Name: proto.String(b.name()), Node: b.Nodes, Initializer: b.Inits, Input: b.Inputs, Output: outs,
	}
}

// Model makes a model of the default-domain opset with the given float
// outputs, named as the builder ("test" by default).
func (b *Builder) Model(opset int64, outputs ...string) *onnx.Model {
	m := onnx.NewModel(b.Graph(outputs...), opset)
	m.Name = b.name()
	return m
}

func (b *Builder) name() string {
	if b.Name == "" {
		return "test"
	}
	return b.Name
}
