package prune

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// session loads a model into ONNX Runtime; loading is part of what the
// tests check.
func session(t testing.TB, name string, m *onnx.Model) *ort.Session {
	t.Helper()
	orttest.Require(t)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(name, b, ort.Options{})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// prune runs Prune and fails the test on error.
func mustPrune(t testing.TB, m *onnx.Model, spec Options, data *dataset.Dataset) (*onnx.Model, *Report) {
	t.Helper()
	out, rep, err := Prune(context.Background(), m, spec, data, nil)
	if err != nil {
		t.Fatalf("Prune(%+v): %v", spec, err)
	}
	return out, rep
}

// optsName names a test case by its options.
func optsName(o Options) string {
	amount := fmt.Sprintf("%g", o.Sparsity)
	if !o.Pattern.IsZero() {
		amount = o.Pattern.String()
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s %s", o.Method, amount, o.Scope))
}

// newRand is a seeded source for test data.
func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

// builder makes small graphs for tests.
type builder struct {
	t   testing.TB
	g   *onnxpb.GraphProto
	rng *rand.Rand
}

func newBuilder(t testing.TB, name string) *builder {
	return &builder{t: t, g: &onnxpb.GraphProto{Name: proto.String(name)}, rng: newRand(1)}
}

func (b *builder) input(name string, dt onnx.DataType, dims ...onnx.Dim) *builder {
	b.g.Input = append(b.g.Input, onnx.ValueInfo(name, dt, dims))
	return b
}

func (b *builder) output(name string, dt onnx.DataType) *builder {
	b.g.Output = append(b.g.Output, onnx.ValueInfo(name, dt, nil))
	return b
}

// random returns n values uniform in [-1, 1).
func (b *builder) random(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(2*b.rng.Float64() - 1)
	}
	return v
}

// init adds an initializer; nil vals are random.
func (b *builder) init(name string, dims []int64, vals []float32) *builder {
	if vals == nil {
		vals = b.random(onnx.NumElements(dims))
	}
	tp, err := onnx.TensorToProto(onnx.NewTensor(dims, vals), name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return b
}

func (b *builder) initInt64(name string, vals ...int64) *builder {
	tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{int64(len(vals))}, vals), name)
	if err != nil {
		b.t.Fatal(err)
	}
	b.g.Initializer = append(b.g.Initializer, tp)
	return b
}

// constant adds a Constant node holding a random weight.
func (b *builder) constant(name string, dims []int64) *builder {
	tp, err := onnx.TensorToProto(onnx.NewTensor(dims, b.random(onnx.NumElements(dims))), "")
	if err != nil {
		b.t.Fatal(err)
	}
	tp.Name = nil
	return b.node("Constant", name+"_const", nil, []string{name}, onnx.AttrTensor("value", tp))
}

func (b *builder) node(op, name string, ins, outs []string, attrs ...*onnxpb.AttributeProto) *builder {
	b.g.Node = append(b.g.Node, onnx.NewNode(op, name, ins, outs, attrs...))
	return b
}

func (b *builder) model(opset int64) *onnx.Model {
	m := onnx.NewModel(b.g, opset)
	m.Name = b.g.GetName()
	return m
}

func sortUint32(v []uint32) { slices.Sort(v) }
