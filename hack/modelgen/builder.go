// Package modelgen builds ONNX models with known weights, deterministic
// from a seed, for tests and figures: a BERT-style encoder (BERT), a
// MobileNet-V2-style classifier (MobileNetV2) and a recurrent controller
// (Controller), with the datasets that feed them. The building blocks
// (Builder, Linear, LayerNorm, SelfAttention, ConvBN, ...) are meant for
// more: a decoder reuses the embedding, attention and feed-forward blocks.
//
// Weights are drawn with the statistics of trained networks rather than of
// an initializer: heavy-tailed (Laplace) values whose scale keeps
// activations of order one through the depth, per-output-channel scales
// of folded batch normalizations spread over an order of magnitude, and
// layer-norm gains around one. The command hack/modelgen/cmd/modelgen
// writes the models and datasets to files.
package modelgen

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Builder is a graph under construction. Blocks add nodes and weights to
// it in topological order; Scope gives a view that prefixes the names it
// makes, so weights read like an exporter's ("encoder.layer.0.attention.
// self.query.weight").
type Builder struct {
	g      *graph
	prefix string
}

// graph is what every scope of one Builder shares.
type graph struct {
	name    string
	rand    *rand.Rand
	nodes   []*onnxpb.NodeProto
	inits   []*onnxpb.TensorProto
	inputs  []*onnxpb.ValueInfoProto
	outputs []*onnxpb.ValueInfoProto
	used    map[string]int
	// ext, when set, receives the values of every Param of at least
	// extMin bytes as they are drawn (ExternalData).
	ext    *onnx.ExternalWriter
	extMin int64
	// err is the first error writing external data; later Params are
	// not written.
	err error
}

// New starts a graph called name whose weights are drawn from seed.
func New(name string, seed uint64) *Builder {
	return &Builder{g: &graph{name: name, rand: rand.New(rand.NewPCG(seed, 0x6b6f6d70)), used: map[string]int{}}}
}

// Scope returns a view of b whose names start with prefix (joined to b's
// own with a dot).
func (b *Builder) Scope(prefix string) *Builder {
	if b.prefix != "" {
		prefix = b.prefix + "." + prefix
	}
	return &Builder{g: b.g, prefix: prefix}
}

// Rand is the builder's random source (shared by every scope).
func (b *Builder) Rand() *rand.Rand { return b.g.rand }

// name makes a name unique in the graph, under the scope's prefix.
func (b *Builder) name(base string) string {
	if b.prefix != "" {
		base = b.prefix + "." + base
	}
	n := b.g.used[base]
	b.g.used[base]++
	if n == 0 {
		return base
	}
	return fmt.Sprintf("%s_%d", base, n)
}

// Input declares a graph input (dims: ints for fixed sizes, strings for
// named dynamic ones) and returns its name, which is not prefixed.
func (b *Builder) Input(name string, dt onnx.DataType, dims ...onnx.Dim) string {
	b.g.used[name]++
	b.g.inputs = append(b.g.inputs, onnx.ValueInfo(name, dt, dimsOrScalar(dims)))
	return name
}

// Output declares a graph output: the tensor t renamed to name by an
// Identity when they differ.
func (b *Builder) Output(t, name string, dt onnx.DataType, dims ...onnx.Dim) {
	if t != name {
		b.g.used[name]++
		b.g.nodes = append(b.g.nodes, onnx.NewNode("Identity", name, []string{t}, []string{name}))
	}
	b.g.outputs = append(b.g.outputs, onnx.ValueInfo(name, dt, dimsOrScalar(dims)))
}

func dimsOrScalar(dims []onnx.Dim) []onnx.Dim {
	if dims == nil {
		return []onnx.Dim{}
	}
	return dims
}

// Const adds an initializer holding t and returns its name.
func (b *Builder) Const(base string, t *onnx.Tensor) string {
	name := b.name(base)
	tp, err := onnx.TensorToProto(t, name)
	if err != nil {
		panic(fmt.Sprintf("modelgen: %s: %v", name, err))
	}
	b.g.inits = append(b.g.inits, tp)
	return name
}

// Ints adds an int64 initializer (a shape, axes, indices).
func (b *Builder) Ints(base string, v ...int64) string {
	return b.Const(base, onnx.NewTensor([]int64{int64(len(v))}, v))
}

// Scalar adds a float32 scalar initializer.
func (b *Builder) Scalar(base string, v float32) string {
	return b.Const(base, onnx.NewTensor([]int64{}, []float32{v}))
}

// ExternalData streams the values of every later Param of at least
// minBytes to w as they are drawn, instead of holding them in the graph:
// a model of any size is generated in the memory of one chunk of values.
// The values are the same as without it (same draws in the same order).
func (b *Builder) ExternalData(w *onnx.ExternalWriter, minBytes int64) {
	b.g.ext, b.g.extMin = w, minBytes
}

// Param adds a float32 weight of the given dims drawn from d.
func (b *Builder) Param(base string, d Dist, dims ...int64) string {
	n := onnx.NumElements(dims)
	if b.g.ext != nil && 4*int64(n) >= b.g.extMin {
		return b.streamParam(base, d, dims)
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = d.draw(b.g.rand)
	}
	return b.Const(base, onnx.NewTensor(dims, v))
}

// streamParam draws a Param into the external data file, a chunk at a
// time. A write error is kept for Err.
func (b *Builder) streamParam(base string, d Dist, dims []int64) string {
	name := b.name(base)
	tp := &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(onnx.Float))}
	b.g.inits = append(b.g.inits, tp)
	if b.g.err != nil {
		return name
	}
	n := int64(onnx.NumElements(dims))
	b.g.err = b.g.ext.Write(tp, 4*n, func(w io.Writer) error {
		buf := make([]byte, 4*min(n, 1<<16))
		for left := n; left > 0; {
			k := min(left, int64(len(buf)/4))
			for i := range k {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(d.draw(b.g.rand)))
			}
			if _, err := w.Write(buf[:4*k]); err != nil {
				return err
			}
			left -= k
		}
		return nil
	})
	return name
}

// Err is the first error writing external data (ExternalData), if any.
func (b *Builder) Err() error { return b.g.err }

// Op adds a node with one output and returns the output's name.
func (b *Builder) Op(op string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.OpN(op, inputs, 1, attrs...)[0]
}

// OpN adds a node with n outputs and returns their names.
func (b *Builder) OpN(op string, inputs []string, n int, attrs ...*onnxpb.AttributeProto) []string {
	node := b.name(op)
	outs := make([]string, n)
	for i := range outs {
		outs[i] = node + "_output"
		if i > 0 {
			outs[i] = fmt.Sprintf("%s_output_%d", node, i)
		}
		b.g.used[outs[i]]++
	}
	b.g.nodes = append(b.g.nodes, onnx.NewNode(op, node, inputs, outs, attrs...))
	return outs
}

// Model makes the model: default-domain opset, IR version to match.
func (b *Builder) Model(opset int64) *onnx.Model {
	g := &onnxpb.GraphProto{
		Name: proto.String(b.g.name), Node: b.g.nodes, Initializer: b.g.inits,
		Input: b.g.inputs, Output: b.g.outputs,
	}
	m := onnx.NewModel(g, opset)
	m.Proto.ProducerName = proto.String("kompress modelgen")
	m.Name = b.g.name
	return m
}

// Dist is a distribution weights are drawn from.
type Dist struct {
	kind  distKind
	a, b  float64
	value float32
}

type distKind int

const (
	distLaplace distKind = iota
	distNormal
	distUniform
	distFill
	distLogNormal
)

// Laplace has mean 0 and standard deviation std: the heavy tails of
// trained weights.
func Laplace(std float64) Dist { return Dist{kind: distLaplace, a: std / math.Sqrt2} }

// Normal has mean mean and standard deviation std.
func Normal(mean, std float64) Dist { return Dist{kind: distNormal, a: mean, b: std} }

// Uniform is uniform in [lo, hi).
func Uniform(lo, hi float64) Dist { return Dist{kind: distUniform, a: lo, b: hi} }

// Fill is the constant v.
func Fill(v float32) Dist { return Dist{kind: distFill, value: v} }

// LogNormal is exp(N(mu, sigma)): positive scales spread over orders of
// magnitude (folded batch-norm gains).
func LogNormal(mu, sigma float64) Dist { return Dist{kind: distLogNormal, a: mu, b: sigma} }

func (d Dist) draw(r *rand.Rand) float32 {
	switch d.kind {
	case distLaplace:
		u := r.Float64() - 0.5
		return float32(-d.a * math.Copysign(math.Log(1-2*math.Abs(u)), u))
	case distNormal:
		return float32(d.a + d.b*r.NormFloat64())
	case distUniform:
		return float32(d.a + (d.b-d.a)*r.Float64())
	case distLogNormal:
		return float32(math.Exp(d.a + d.b*r.NormFloat64()))
	}
	return d.value
}
