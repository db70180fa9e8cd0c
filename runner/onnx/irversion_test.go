package onnx_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

func inputNames(m *onnx.Model) []string {
	var names []string
	for _, vi := range m.Proto.GetGraph().GetInput() {
		names = append(names, vi.GetName())
	}
	return names
}

// mnist-8 is IR 3: its eight initializers are listed as graph inputs, as
// that IR required. Raising it past IR 4 must not turn them into inputs a
// caller may override.
func TestRaiseIRVersionDropsInitializerInputs(t *testing.T) {
	m := onnxtest.Model(t, onnxtest.MNIST8)
	if m.Proto.GetIrVersion() != 3 || len(inputNames(m)) < 2 {
		t.Fatalf("fixture: IR %d, inputs %v; want an IR 3 model listing its initializers", m.Proto.GetIrVersion(), inputNames(m))
	}
	m.RaiseIRVersion(6)
	if m.Proto.GetIrVersion() != 6 {
		t.Errorf("IR %d, want 6", m.Proto.GetIrVersion())
	}
	if diff := cmp.Diff([]string{"Input3"}, inputNames(m)); diff != "" {
		t.Errorf("graph inputs (-want +got):\n%s", diff)
	}
}

// From IR 4 on a listed initializer is an overridable default: raising the
// version further keeps it listed.
func TestRaiseIRVersionKeepsOverridableInputs(t *testing.T) {
	m := onnxtest.Model(t, onnxtest.MNIST8)
	m.Proto.IrVersion = proto.Int64(4)
	before := inputNames(m)
	m.RaiseIRVersion(8)
	if diff := cmp.Diff(before, inputNames(m)); diff != "" {
		t.Errorf("graph inputs changed (-before +after):\n%s", diff)
	}
	m.RaiseIRVersion(5) // never lowers
	if m.Proto.GetIrVersion() != 8 {
		t.Errorf("IR %d after asking for 5, want 8 kept", m.Proto.GetIrVersion())
	}
}
