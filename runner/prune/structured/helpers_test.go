package structured

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

const (
	mnistModel = "../../../testdata/models/mnist-8.onnx"
	ppocrModel = "../../../testdata/models/ppocr-det.onnx"
)

func loadModel(t testing.TB, path string) *onnx.Model {
	t.Helper()
	m, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// planned runs Prune's steps up to the plan, and returns the pruning and
// the plan before the model is rewritten.
func planned(t testing.TB, m *onnx.Model, opts Options) (*pruning, *plan) {
	t.Helper()
	pr, err := newPruning(context.Background(), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	scores, _, err := pr.a.score(context.Background(), pr.a.m)
	if err != nil {
		t.Fatal(err)
	}
	return pr, pr.a.decide(scores)
}

// masked is the equivalent of the plan without removing anything: every
// layer that mixes channels gets zeros where it reads a removed channel,
// so removed channels reach nothing. The pruned model must compute what
// it computes. Call it before apply.
func masked(t testing.TB, pr *pruning, p *plan) *onnx.Model {
	t.Helper()
	c := pr.a.m.Clone()
	ws := map[string]*onnx.Weight{}
	for _, w := range c.Weights() {
		if w.Graph.Path == "" {
			ws[w.Name] = w
		}
	}
	for _, e := range pr.a.edits {
		if !e.mixing {
			continue
		}
		w := ws[e.node.GetInput()[e.input]]
		tt, err := w.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		vals := tt.Data.([]float32)
		keep := map[int]bool{}
		for _, p := range positions(pr.a.kept(p, e.lay), e.lay.block) {
			keep[p] = true
		}
		outer, size, inner := int(prod(tt.Dims[:e.axis])), int(tt.Dims[e.axis]), int(prod(tt.Dims[e.axis+1:]))
		for o := range outer {
			for q := range size {
				if !keep[q] {
					clear(vals[(o*size+q)*inner : (o*size+q+1)*inner])
				}
			}
		}
		if err := w.Set(tt); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// maxDiff runs both models on the inputs and returns the largest relative
// difference over their outputs.
func maxDiff(t testing.TB, a, b *onnx.Model, inputs map[string]*onnx.Tensor) float64 {
	t.Helper()
	oa := orttest.Run(t, a, inputs)
	ob := orttest.Run(t, b, inputs)
	worst := 0.0
	for name, ta := range oa {
		tb := ob[name]
		if tb == nil {
			t.Fatalf("output %q missing", name)
		}
		worst = math.Max(worst, orttest.MaxDiff(tb, ta))
	}
	return worst
}

// builder makes small models whose right pruning is known: weights are
// normal values except the channels a test zeroes.
type builder struct {
	nodes  []*onnxpb.NodeProto
	inits  []*onnxpb.TensorProto
	inputs []*onnxpb.ValueInfoProto
	rng    *rand.Rand
}

func newBuilder(seed uint64) *builder { return &builder{rng: rand.New(rand.NewPCG(seed, seed))} }

func (b *builder) input(name string, dims ...onnx.Dim) string {
	b.inputs = append(b.inputs, onnx.ValueInfo(name, onnx.Float, dims))
	return name
}

// weight adds a float initializer of normal values with the given indices
// along axis all zero.
func (b *builder) weight(name string, dims []int64, axis int, zero ...int) string {
	t := onnx.NewTensor(dims, make([]float32, onnx.NumElements(dims)))
	vals := t.Data.([]float32)
	for i := range vals {
		vals[i] = float32(b.rng.NormFloat64())
	}
	for _, z := range zero {
		zeroAt(t, axis, z)
	}
	return b.init(name, t)
}

// positive adds a float initializer of values in [0.5, 1.5) (variances).
func (b *builder) positive(name string, n int64) string {
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = 0.5 + b.rng.Float32()
	}
	return b.init(name, onnx.NewTensor([]int64{n}, vals))
}

func (b *builder) ints(name string, v ...int64) string {
	return b.init(name, onnx.NewTensor([]int64{int64(len(v))}, v))
}

func (b *builder) init(name string, t *onnx.Tensor) string {
	tp, err := onnx.TensorToProto(t, name)
	if err != nil {
		panic(err)
	}
	b.inits = append(b.inits, tp)
	return name
}

func (b *builder) node(op, out string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	b.nodes = append(b.nodes, onnx.NewNode(op, out, inputs, []string{out}, attrs...))
	return out
}

func (b *builder) model(outputs ...string) *onnx.Model {
	var outs []*onnxpb.ValueInfoProto
	for _, o := range outputs {
		outs = append(outs, onnx.ValueInfo(o, onnx.Float, nil))
	}
	m := onnx.NewModel(&onnxpb.GraphProto{
		Name: proto.String("test"), Node: b.nodes, Initializer: b.inits, Input: b.inputs, Output: outs,
	}, 13)
	m.Name = "test"
	return m
}

// zeroAt sets every element at index i of axis to zero.
func zeroAt(t *onnx.Tensor, axis, i int) {
	vals := t.Data.([]float32)
	outer, size, inner := int(prod(t.Dims[:axis])), int(t.Dims[axis]), int(prod(t.Dims[axis+1:]))
	for o := range outer {
		clear(vals[(o*size+i)*inner : (o*size+i+1)*inner])
	}
}

// gather is what a weight should hold after pruning: the elements whose
// index along axis is in keep, in order. Written independently of
// sliceAxis, by walking coordinates.
func gather(t *onnx.Tensor, axis int, keep []int) *onnx.Tensor {
	vals := t.Data.([]float32)
	var out []float32
	coord := make([]int64, len(t.Dims))
	pos := map[int64]int{}
	for i, k := range keep {
		pos[int64(k)] = i
	}
	type elem struct {
		key []int64
		v   float32
	}
	var kept []elem
	for i := range vals {
		rem := int64(i)
		for d := len(t.Dims) - 1; d >= 0; d-- {
			coord[d] = rem % t.Dims[d]
			rem /= t.Dims[d]
		}
		j, ok := pos[coord[axis]]
		if !ok {
			continue
		}
		key := append([]int64(nil), coord...)
		key[axis] = int64(j)
		kept = append(kept, elem{key, vals[i]})
	}
	sort.Slice(kept, func(i, j int) bool { return slices.Compare(kept[i].key, kept[j].key) < 0 })
	for _, e := range kept {
		out = append(out, e.v)
	}
	dims := slices.Clone(t.Dims)
	dims[axis] = int64(len(keep))
	return onnx.NewTensor(dims, out)
}

// weights maps the main-graph weights of m by name.
func weights(t testing.TB, m *onnx.Model) map[string]*onnx.Tensor {
	t.Helper()
	out := map[string]*onnx.Tensor{}
	for _, w := range m.Weights() {
		if w.Graph.Path != "" {
			continue
		}
		v, err := w.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		out[w.Name] = v
	}
	return out
}

// normalInputs makes one input of normal values.
func normalInputs(seed uint64, name string, dims ...int64) map[string]*onnx.Tensor {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]float32, onnx.NumElements(dims))
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return map[string]*onnx.Tensor{name: onnx.NewTensor(dims, v)}
}

func nodeNamed(m *onnx.Model, name string) *onnxpb.NodeProto {
	for _, n := range m.Proto.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}
