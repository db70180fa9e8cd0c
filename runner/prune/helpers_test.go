package prune

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
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

// builder makes small models for tests.
type builder struct{ *onnxtest.Builder }

// newBuilder returns a builder for a model (or subgraph) called name,
// its Rand seeded alike for every test.
func newBuilder(name string) *builder {
	b := &builder{onnxtest.NewBuilder(1)}
	b.Name = name
	return b
}

// weight adds a float initializer of uniform values in [-1, 1).
func (b *builder) weight(name string, dims ...int64) string {
	return b.Init(name, onnx.NewTensor(dims, b.Uniform(onnx.NumElements(dims))))
}

// constant adds a Constant node holding a weight of uniform values.
func (b *builder) constant(name string, dims ...int64) string {
	return b.Constant(name, onnx.NewTensor(dims, b.Uniform(onnx.NumElements(dims))))
}

func sortUint32(v []uint32) { slices.Sort(v) }
