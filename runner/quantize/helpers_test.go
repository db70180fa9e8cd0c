package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// builder makes small models for structure tests.
type builder struct{ *onnxtest.Builder }

func newBuilder(seed uint64) *builder { return &builder{onnxtest.NewBuilder(seed)} }

// weight adds a float32 initializer of normal values.
func (b *builder) weight(name string, dims ...int64) string {
	return b.Init(name, onnx.NewTensor(dims, b.randn(onnx.NumElements(dims))))
}

func (b *builder) randn(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(b.Rand.NormFloat64() * 0.5)
	}
	return v
}

// randomBatches makes n batches of one input filled with normal values.
func randomBatches(seed uint64, input string, n int, dims ...int64) []map[string]*onnx.Tensor {
	r := rand.New(rand.NewPCG(seed, 1))
	var out []map[string]*onnx.Tensor
	for range n {
		v := make([]float32, onnx.NumElements(dims))
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		out = append(out, map[string]*onnx.Tensor{input: onnx.NewTensor(dims, v)})
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// opTypes lists the main graph's node op types in order.
func opTypes(m *onnx.Model) []string {
	var out []string
	for _, n := range m.Proto.GetGraph().GetNode() {
		out = append(out, n.GetOpType())
	}
	return out
}

// optimizedOps counts the operators of the model ONNX Runtime runs after
// its graph optimizations, keyed "domain:OpType" ("" for ai.onnx).
func optimizedOps(t testing.TB, m *onnx.Model) map[string]int {
	t.Helper()
	orttest.Require(t)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	kernels, err := Kernels(b)
	if err != nil {
		t.Fatal(err)
	}
	return kernels
}

// runUnfused runs m with graph optimizations off: QDQ nodes are executed
// as written (float arithmetic on dequantized values), not fused into
// integer kernels, so the result does not depend on the CPU.
func runUnfused(t testing.TB, m *onnx.Model, inputs map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	sess, err := feed.Open(m, feed.Options{Optimization: ort.OptimizeDisabled})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	out, err := sess.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// run loads m into ONNX Runtime and runs it on inputs.
func run(t testing.TB, m *onnx.Model, inputs map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	return orttest.Run(t, m, inputs)
}

// cosine is the cosine similarity of two tensors' values.
func cosine(t testing.TB, a, b *onnx.Tensor) float64 {
	t.Helper()
	x, err := a.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	y, err := b.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != len(y) {
		t.Fatalf("cosine of %d and %d values", len(x), len(y))
	}
	var dot, nx, ny float64
	for i := range x {
		dot += float64(x[i]) * float64(y[i])
		nx += float64(x[i]) * float64(x[i])
		ny += float64(y[i]) * float64(y[i])
	}
	return dot / math.Sqrt(nx*ny)
}

// initializer returns a main-graph initializer as a tensor.
func initializer(t testing.TB, m *onnx.Model, name string) *onnx.Tensor {
	t.Helper()
	for _, w := range m.Weights() {
		if w.Name == name {
			v, err := w.Tensor()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no initializer %q", name)
	return nil
}

// nodesOf returns the main-graph nodes of an op type.
func nodesOf(m *onnx.Model, op string) []*onnxpb.NodeProto {
	var out []*onnxpb.NodeProto
	for _, n := range m.Proto.GetGraph().GetNode() {
		if n.GetOpType() == op {
			out = append(out, n)
		}
	}
	return out
}

// floatReasons maps left-in-float tensor names to their reasons.
func floatReasons(r *Report) map[string]Reason {
	out := map[string]Reason{}
	for _, f := range r.Float {
		out[f.Name] = f.Reason
	}
	return out
}

// modelData feeds m the arrays of a generated dataset (hack/modelgen's),
// one per input, through the feeder the runner uses.
func modelData(t testing.TB, m *onnx.Model, arrays ...dataset.Array) *feed.Data {
	t.Helper()
	d, err := feed.FromDataset(feed.Inputs(m), &dataset.Dataset{Name: "generated", Arrays: arrays})
	if err != nil {
		t.Fatal(err)
	}
	return d
}
