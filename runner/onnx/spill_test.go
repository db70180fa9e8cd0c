package onnx_test

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// halve replaces every float weight of m's main graph with half its
// values, by set (Set or Spill), and returns how many it replaced.
func halve(t *testing.T, m *onnx.Model, set func(w *onnx.Weight, t *onnx.Tensor) error) int {
	t.Helper()
	n := 0
	for _, w := range m.Weights() {
		if w.Graph.Path != "" || w.DType != onnx.Float {
			continue
		}
		halveWeight(t, w, set)
		n++
	}
	return n
}

// halveWeight replaces a float weight with half its values, by set.
func halveWeight(t *testing.T, w *onnx.Weight, set func(w *onnx.Weight, t *onnx.Tensor) error) {
	t.Helper()
	v, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i := range v {
		v[i] *= 0.5
	}
	if err := set(w, onnx.NewTensor(w.Dims, v)); err != nil {
		t.Fatal(err)
	}
}

// savedFiles saves m into a folder of its own and returns each file's
// bytes by base name.
func savedFiles(t *testing.T, m *onnx.Model, opts onnx.SaveOptions) map[string][]byte {
	t.Helper()
	saved, err := m.Save(filepath.Join(t.TempDir(), "out.onnx"), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range saved {
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if f.SHA256 != sha256Hex(b) {
			t.Fatalf("%s: Save reported sha256 %s, the file has %s", f.Path, f.SHA256, sha256Hex(b))
		}
		out[filepath.Base(f.Path)] = b
	}
	return out
}

// A spilled weight reads back as set, and the model saves to the bytes
// the model read whole with the same weights Set gives: in one file
// (streamed from it, or from its bytes in memory) and with external
// data, saved either way.
func TestSpillSavesWhatSetSaves(t *testing.T) {
	inline := inlineModels(t)["decoder"]
	external := writeDecoder(t)
	raw, err := os.ReadFile(inline)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		open  func() (*onnx.Model, error)
		whole func() (*onnx.Model, error)
	}{
		{"inline file", func() (*onnx.Model, error) { return onnx.OpenFile(inline) }, func() (*onnx.Model, error) { return onnx.LoadFile(inline) }},
		{"inline bytes", func() (*onnx.Model, error) { return onnx.OpenBytes(raw, "model.onnx", t.TempDir()) }, func() (*onnx.Model, error) { return onnx.Load(raw) }},
		{"external data", func() (*onnx.Model, error) { return onnx.OpenFile(external) }, func() (*onnx.Model, error) { return onnx.LoadFile(external) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := tc.open()
			if err != nil {
				t.Fatal(err)
			}
			whole, err := tc.whole()
			if err != nil {
				t.Fatal(err)
			}
			if n := halve(t, m, func(w *onnx.Weight, v *onnx.Tensor) error { return m.Spill(w, v) }); n < 4 {
				t.Fatalf("%d weights spilled: the test needs a model with some", n)
			}
			halve(t, whole, (*onnx.Weight).Set)
			if diff := cmp.Diff(weightValues(t, whole), weightValues(t, m)); diff != "" {
				t.Fatalf("weights read back (-set +spilled):\n%s", diff)
			}
			for _, opts := range []onnx.SaveOptions{{}, {ExternalData: true}} {
				want, got := savedFiles(t, whole, opts), savedFiles(t, m, opts)
				if len(got) != len(want) {
					t.Fatalf("%+v: saved %d files, Set's model %d", opts, len(got), len(want))
				}
				for name, b := range want {
					if !bytes.Equal(got[name], b) {
						t.Errorf("%+v: %s is %d bytes, not the %d Set's model saves", opts, name, len(got[name]), len(b))
					}
				}
			}
		})
	}
}

// ONNX Runtime runs a model with spilled weights (read back inline for
// it: the scratch file is not in the model's folder) as the model read
// whole with the same weights Set.
func TestSpilledModelRuns(t *testing.T) {
	path := writeDecoder(t)
	m, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	whole, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	halve(t, m, func(w *onnx.Weight, v *onnx.Tensor) error { return m.Spill(w, v) })
	halve(t, whole, (*onnx.Weight).Set)
	sameRun(t, "spilled", m, whole)
}

// Spilling every weight of a streamed model holds none of them: the
// heap after is the model's structure, where Set holds every weight.
func TestSpillHoldsNoWeight(t *testing.T) {
	path, size := writeInlineDecoder(t)
	held := func(set func(m *onnx.Model) func(*onnx.Weight, *onnx.Tensor) error) int64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		m, err := onnx.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		halve(t, m, set(m))
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(m)
		return int64(after.HeapAlloc) - int64(before.HeapAlloc)
	}
	spilled := held(func(m *onnx.Model) func(*onnx.Weight, *onnx.Tensor) error { return m.Spill })
	set := held(func(*onnx.Model) func(*onnx.Weight, *onnx.Tensor) error { return (*onnx.Weight).Set })
	t.Logf("a %d-byte model holds %d bytes with every weight spilled, %d with every weight Set", size, spilled, set)
	if set < size*3/4 {
		t.Fatalf("with every weight Set the model holds %d bytes of its %d: the test measures nothing", set, size)
	}
	if spilled > size/8 {
		t.Errorf("with every weight spilled the model holds %d bytes of its %d, over %d: weights are held", spilled, size, size/8)
	}
}
