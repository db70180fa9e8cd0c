package onnxtest

import (
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Builder makes small models for tests, one node at a time: float
// inputs, initializers and single-output nodes in the order they are
// added (which must be topological).
type Builder struct {
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
	b.Inputs = append(b.Inputs, onnx.ValueInfo(name, onnx.Float, dims))
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

// Node adds a node writing one output, out, and returns out.
func (b *Builder) Node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	b.Nodes = append(b.Nodes, onnx.NewNode(op, out, inputs, []string{out}, attrs...))
	return out
}

// Model makes a model named "test" of the default-domain opset with the
// given float outputs.
func (b *Builder) Model(opset int64, outputs ...string) *onnx.Model {
	var outs []*onnxpb.ValueInfoProto
	for _, o := range outputs {
		outs = append(outs, onnx.ValueInfo(o, onnx.Float, nil))
	}
	m := onnx.NewModel(&onnxpb.GraphProto{
		Name: proto.String("test"), Node: b.Nodes, Initializer: b.Inits, Input: b.Inputs, Output: outs,
	}, opset)
	m.Name = "test"
	return m
}
