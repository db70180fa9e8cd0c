package onnx_test

import (
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// allocBound is the most a test lets one call on a crafted model (a few
// hundred bytes) allocate: far below what any of their dims claim, so an
// allocation sized from dims before the check fails the test (or the
// process) instead of passing.
const allocBound = 1 << 20

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkRefused asserts err is bad input naming what the case wants.
func checkRefused(t *testing.T, what string, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: accepted", what)
	}
	if !errors.Is(err, onnx.ErrInvalid) || !fault.IsBadInput(err) {
		t.Errorf("%s: error does not wrap onnx.ErrInvalid and fault.ErrBadInput: %v", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
}

// TestLoadRefusesCraftedModels loads each crafted model of issue 11: Load
// must refuse it as bad input, naming the tensor and what was expected,
// allocating no more than the file's size justifies.
func TestLoadRefusesCraftedModels(t *testing.T) {
	for _, c := range onnxtest.CraftedModels() {
		t.Run(c.Name, func(t *testing.T) {
			data := c.Bytes()
			var err error
			if n := allocated(func() { _, err = onnx.Load(data) }); n > allocBound {
				t.Errorf("Load allocated %d bytes for a %d-byte model", n, len(data))
			}
			checkRefused(t, "Load", err, append([]string{"model: "}, c.Want...))
		})
	}
}

// TestCraftedModelsInMemory reads the crafted models' tensors without Load
// (a model built in memory is not validated): Stats and every weight's
// Tensor and Float32s must fail as bad input, with no panic and bounded
// allocations, so a stage that reads the tensor deep inside an algorithm
// fails the same way.
func TestCraftedModelsInMemory(t *testing.T) {
	for _, c := range onnxtest.CraftedModels() {
		t.Run(c.Name, func(t *testing.T) {
			m := &onnx.Model{Proto: c.Model, Name: c.Name}
			var err error
			if n := allocated(func() { _, err = m.Stats() }); n > allocBound {
				t.Errorf("Stats allocated %d bytes", n)
			}
			checkRefused(t, "Stats", err, nil)
			for _, w := range m.Weights() { // none when the model's fault is its structure
				if n := allocated(func() { _, err = w.Tensor() }); n > allocBound {
					t.Errorf("weight %q: Tensor allocated %d bytes", w.Name, n)
				}
				checkRefused(t, "Tensor", err, []string{"weight " + `"` + w.Name + `"`})
				_, err = w.Float32s()
				checkRefused(t, "Float32s", err, nil)
			}
		})
	}
}

// TestDeepestSubgraphs loads subgraphs nested MaxGraphDepth deep under
// names that make the longest path allowed: accepted, and measured with
// bounded allocations (walks over the graphs cost depth times path).
func TestDeepestSubgraphs(t *testing.T) {
	name := strings.Repeat("n", onnx.MaxGraphPath/onnx.MaxGraphDepth-len("/then_branch")-1)
	c := onnxtest.Crafted{Model: onnxtest.NestedModel(onnx.MaxGraphDepth, name)}
	var err error
	if n := allocated(func() {
		var m *onnx.Model
		if m, err = onnx.Load(c.Bytes()); err == nil {
			_, err = m.Stats()
		}
	}); n > 16<<20 {
		t.Errorf("Load and Stats allocated %d bytes for a %d-byte model", n, len(c.Bytes()))
	}
	if err != nil {
		t.Fatal(err)
	}
}
