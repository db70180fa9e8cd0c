package onnx_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
)

// inlineModels are models in one file: real exported ones (written by
// C++ protobuf) and a generated decoder (written by Go's). The decoder
// and hello-deepa have initializers past the 64 KiB OpenFile leaves in
// the file; the others keep their weights in Constant nodes (read whole)
// or are small.
func inlineModels(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	dec := filepath.Join(dir, "decoder.onnx")
	b, err := modelgen.Decoder(modelgen.DecoderConfig{Hidden: 128, Heads: 4, Layers: 2, Seed: 3}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"decoder":     dec,
		"ppocr-rec":   onnxtest.ModelPath(onnxtest.PPOCRRec),
		"ppocr-cls":   onnxtest.ModelPath(onnxtest.PPOCRCls),
		"silero-vad":  onnxtest.ModelPath(onnxtest.SileroVAD),
		"hello-deepa": onnxtest.ModelPath(onnxtest.HelloDeepa),
		"mnist-8":     onnxtest.ModelPath("mnist-8.onnx"),
	}
}

// wholeBytes is what a model read whole and serialized again gives: the
// bytes a stage published before models in one file were streamed.
func wholeBytes(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A model in one file opened by OpenFile keeps its large initializers in
// the file, reads them as the whole model does, and is saved (and
// serialized) to the very bytes the whole model gives: untouched (from
// the file and, by OpenBytes, from its bytes in memory), and with one
// weight replaced.
func TestOpenFileInlineSavesTheSameBytes(t *testing.T) {
	for name, path := range inlineModels(t) {
		t.Run(name, func(t *testing.T) {
			want := wholeBytes(t, path)
			m, err := onnx.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			whole, err := onnx.Load(want)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(weightValues(t, whole), weightValues(t, m)); diff != "" {
				t.Fatalf("weights read from the file differ (-whole +streamed):\n%s", diff)
			}
			if streams := name == "decoder" || name == "hello-deepa"; m.Streamed() != streams {
				t.Fatalf("Streamed is %v, want %v", m.Streamed(), streams)
			}
			if m.HasExternalData() || m.WantsExternalData() {
				t.Fatal("a model in one file is taken for one with external data")
			}
			checkSaved(t, m, want)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			inMemory, err := onnx.OpenBytes(raw, "file://"+path+"?x=1", t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			checkSaved(t, inMemory, want)

			// A weight replaced in both, the largest.
			big := largestWeight(m)
			if big == "" {
				return // every weight in subgraphs
			}
			for _, mm := range []*onnx.Model{m, whole} {
				halveWeight(t, mm.Weight(big), (*onnx.Weight).Set)
			}
			want, err = whole.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			checkSaved(t, m, want)
			if clone := m.Clone(); !bytes.Equal(mustBytes(t, clone), want) {
				t.Fatal("a clone serializes to other bytes")
			}
		})
	}
}

// checkSaved saves m and serializes it, and compares both with want.
func checkSaved(t *testing.T, m *onnx.Model, want []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.onnx")
	saved, err := m.Save(out, onnx.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 1 || !bytes.Equal(got, want) {
		t.Fatalf("saved %d files, %d bytes, not the %d bytes of the whole model", len(saved), len(got), len(want))
	}
	if saved[0].SHA256 != sha256Hex(want) || saved[0].Size != int64(len(want)) {
		t.Fatalf("Save reported %+v, the file is %d bytes sha256 %s", saved[0], len(want), sha256Hex(want))
	}
	if !bytes.Equal(mustBytes(t, m), want) {
		t.Fatal("Bytes differs from the whole model's")
	}
}

func largestWeight(m *onnx.Model) string {
	best, n := "", 0
	for _, w := range m.Weights() {
		if w.Graph.Path == "" && w.DType == onnx.Float && w.NumElements() > n {
			best, n = w.Name, w.NumElements()
		}
	}
	return best
}

// Saving over the file a model streams its weights from is refused.
func TestOpenFileInlineRefusesToOverwriteItself(t *testing.T) {
	path := inlineModels(t)["decoder"]
	m, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Save(path, onnx.SaveOptions{}); err == nil {
		t.Fatal("saved over its own file")
	}
	if !bytes.Equal(wholeBytes(t, path), mustBytes(t, m)) {
		t.Fatal("the model file changed")
	}
}

// The memory regression test: opening a model in one file and saving it
// again allocates its structure, not its weights. Read whole (as
// before), the same took three times the model's bytes (the file read,
// the parsed copy, the serialized output).
func TestOpenFileInlineAllocatesTheStructureOnly(t *testing.T) {
	path, size := writeInlineDecoder(t)
	dir := filepath.Dir(path)
	allocated := func(f func()) int64 {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return int64(after.TotalAlloc - before.TotalAlloc)
	}
	got := allocated(func() {
		m, err := onnx.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Save(filepath.Join(dir, "out.onnx"), onnx.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	// bufio's and sha256's buffers, the structure, the tensors under
	// 64 KiB: a few MB on this 20 MB model.
	if limit := size / 4; got > limit {
		t.Errorf("opening and saving a %d-byte model allocated %d bytes, over %d: its weights are held", size, got, limit)
	}
	t.Logf("opening and saving a %d-byte model allocated %d bytes (%.3fx)", size, got, float64(got)/float64(size))
}

// writeInlineDecoder writes a decoder of 20 MB in one file and returns
// its path and size.
func writeInlineDecoder(t *testing.T) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	b, err := modelgen.Decoder(modelgen.DecoderConfig{Hidden: 256, Heads: 4, Layers: 4, Vocab: 8192, Seed: 5}).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, int64(len(b))
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
