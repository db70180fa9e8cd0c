// Package orttest helps tests run models through ONNX Runtime.
package orttest

import (
	"math"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// Require fails the test when ONNX Runtime cannot be loaded, saying how to
// install it; under `go test -short` it skips instead.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs ONNX Runtime; skipped with -short")
	}
	if err := ort.Init(); err != nil {
		t.Fatalf("ONNX Runtime is required: %v", err)
	}
}

// Run loads the model into ONNX Runtime (one intra-op thread, to share the
// machine with other tests) and runs it once.
func Run(t testing.TB, m *onnx.Model, inputs map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	Require(t)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(m.Name, b, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// MaxDiff is the largest difference between two tensors' values read as
// float32, relative to the reference b's magnitude where that passes 1:
// |a-b| / max(1, |b|). It is +Inf when types, shapes or NaN/Inf positions
// differ. Float32 results of different kernels differ by a few ulps, so
// comparing absolute differences of values in the thousands says nothing.
func MaxDiff(a, b *onnx.Tensor) float64 {
	if a.DType != b.DType || onnx.NumElements(a.Dims) != onnx.NumElements(b.Dims) || len(a.Dims) != len(b.Dims) {
		return math.Inf(1)
	}
	for i := range a.Dims {
		if a.Dims[i] != b.Dims[i] {
			return math.Inf(1)
		}
	}
	if sa, ok := a.Data.([]string); ok {
		sb := b.Data.([]string)
		for i := range sa {
			if sa[i] != sb[i] {
				return math.Inf(1)
			}
		}
		return 0
	}
	fa, err1 := a.Float32s()
	fb, err2 := b.Float32s()
	if err1 != nil || err2 != nil {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range fa {
		x, y := float64(fa[i]), float64(fb[i])
		switch {
		case math.IsNaN(x) || math.IsNaN(y):
			if math.IsNaN(x) != math.IsNaN(y) {
				return math.Inf(1)
			}
		case math.IsInf(x, 0) || math.IsInf(y, 0):
			if x != y {
				return math.Inf(1)
			}
		default:
			worst = math.Max(worst, math.Abs(x-y)/math.Max(1, math.Abs(y)))
		}
	}
	return worst
}

// MNIST8Accuracy is the top-1 accuracy of mnist-8 (or a model with its
// input Input3 and output Plus214_Output_0, batch fixed at 1) on every
// sample of d, run one image at a time by ONNX Runtime.
func MNIST8Accuracy(t testing.TB, m *onnx.Model, d *dataset.Dataset) float64 {
	t.Helper()
	Require(t)
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := ort.NewSession(m.Name, b, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load %s: %v", m.Name, err)
	}
	defer s.Close()
	right := 0
	for i := range d.Len() {
		out, err := s.Run(map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 28}, d.Sample(i))})
		if err != nil {
			t.Fatalf("%s: sample %d: %v", m.Name, i, err)
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
