package prune

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// repoPath is a path from the repository root.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", rel)
}

func loadModel(t testing.TB, name string) *onnx.Model {
	t.Helper()
	m, err := onnx.LoadFile(repoPath(t, filepath.Join("testdata", "models", name)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mnistData loads an MNIST .npz fitted to mnist-8's input.
func mnistData(t testing.TB, name string) *dataset.Dataset {
	t.Helper()
	path, err := dataset.MNISTPath(name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dataset.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Fit(dataset.Input{Name: "Input3", Shape: []int64{1, 1, 28, 28}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// requireORT skips the test under -short (make test-unit runs without
// tools) and otherwise fails it with the way to get ONNX Runtime when it
// is missing.
func requireORT(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs ONNX Runtime")
	}
	if err := ort.Init(); err != nil {
		t.Fatalf("ONNX Runtime is needed (run `make ort`): %v", err)
	}
}

// session loads a model into ONNX Runtime; loading is part of what the
// tests check.
func session(t testing.TB, name string, m *onnx.Model) *ort.Session {
	t.Helper()
	requireORT(t)
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

// accuracy scores mnist-8 (batch fixed at 1) on every sample of d with
// ONNX Runtime.
func accuracy(t testing.TB, name string, m *onnx.Model, d *dataset.Dataset) float64 {
	t.Helper()
	s := session(t, name, m)
	right := 0
	for i := 0; i < d.Len(); i++ {
		out, err := s.Run(map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 28}, d.Sample(i))})
		if err != nil {
			t.Fatalf("%s: sample %d: %v", name, i, err)
		}
		logits, err := out["Plus214_Output_0"].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		best := 0
		for j, v := range logits {
			if v > logits[best] {
				best = j
			}
		}
		if int64(best) == d.Labels[i] {
			right++
		}
	}
	return float64(right) / float64(d.Len())
}

// prune runs Prune and fails the test on error.
func mustPrune(t testing.TB, m *onnx.Model, spec v1alpha1.PruneSpec, data *dataset.Dataset) (*onnx.Model, *Report) {
	t.Helper()
	out, rep, err := Prune(context.Background(), m, spec, data, nil)
	if err != nil {
		t.Fatalf("Prune(%+v): %v", spec, err)
	}
	return out, rep
}

// envSet reports whether an opt-in environment variable is set.
func envSet(name string) bool { return os.Getenv(name) != "" }

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
