package onnx_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// session loads serialized model bytes into ONNX Runtime.
func session(t *testing.T, name string, b []byte, opts ort.Options) *ort.Session {
	t.Helper()
	orttest.Require(t)
	opts.IntraOpThreads = 1
	s, err := ort.NewSession(name, b, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustBytes(t *testing.T, m *onnx.Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameOutputs fails unless both output maps hold the same tensors within
// tol (relative, see orttest.MaxDiff).
func sameOutputs(t *testing.T, label string, want, got map[string]*onnx.Tensor, tol float64) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: %d outputs, want %d", label, len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: output %q missing", label, name)
			continue
		}
		if d := orttest.MaxDiff(g, w); d > tol {
			t.Errorf("%s: output %q differs by %g (tolerance %g)", label, name, d, tol)
		}
	}
}

// ppocrInput is a deterministic [n,3,64,64] image batch.
func ppocrInput(n int) *onnx.Tensor {
	v := make([]float32, n*3*64*64)
	for i := range v {
		v[i] = float32((i*7)%31)/31 - 0.5
	}
	return onnx.NewTensor([]int64{int64(n), 3, 64, 64}, v)
}

func mnistInput(t *testing.T) map[string]*onnx.Tensor {
	t.Helper()
	in, err := onnx.ReadTensorFile(filepath.Join(onnxtest.ModelPath("mnist-8_test_data_set_0"), "input_0.pb"))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]*onnx.Tensor{"Input3": in}
}

func run(t *testing.T, s *ort.Session, in map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"not protobuf", []byte("hello"), "not an ONNX model"},
		{"no graph", mustMarshal(t, &onnxModelNoGraph), "ModelProto.graph is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := onnx.Load(tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load: error = %v, want %q", err, tc.want)
			}
			path := filepath.Join(dir, "m.onnx")
			if err := os.WriteFile(path, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := onnx.LoadFile(path); err == nil || !strings.Contains(err.Error(), path+": ") {
				t.Errorf("LoadFile: error = %v, want it to name %s", err, path)
			}
		})
	}
}

// TestCorpusRoundTrip loads every model of the corpus, saves it, loads it
// back and runs both versions in ONNX Runtime on the reference inputs: the
// protobufs must be equal and the outputs identical.
func TestCorpusRoundTrip(t *testing.T) {
	orttest.Require(t)
	var ran, refused, untestable int
	for _, c := range onnxtest.Corpus(t) {
		m, err := onnx.LoadFile(c.ModelPath())
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		b := mustBytes(t, m)
		back, err := onnx.Load(b)
		if err != nil {
			t.Errorf("%s: reloading: %v", c.Name, err)
			continue
		}
		if !proto.Equal(m.Proto, back.Proto) {
			t.Errorf("%s: model changed in a save/load round trip", c.Name)
		}
		inputs, reason := c.Inputs(m)
		if reason != "" {
			untestable++
			continue
		}
		orig, err := os.ReadFile(c.ModelPath())
		if err != nil {
			t.Fatal(err)
		}
		want, err := runOnce(c.Name, orig, inputs)
		if err != nil {
			refused++ // ONNX Runtime 1.30 cannot run the original either
			continue
		}
		got, err := runOnce(c.Name, b, inputs)
		if err != nil {
			t.Errorf("%s: the original runs but the saved model does not: %v", c.Name, err)
			continue
		}
		sameOutputs(t, c.Name, want, got, 0)
		ran++
	}
	t.Logf("corpus round trip: %d models ran with identical outputs, %d not runnable by ONNX Runtime as shipped, %d with non-tensor inputs", ran, refused, untestable)
	if ran < 700 {
		t.Errorf("only %d corpus models ran; expected most of the corpus", ran)
	}
}

func runOnce(name string, b []byte, inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	s, err := ort.NewSession(name, b, ort.Options{IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Run(inputs)
}

// TestExternalData saves models with their weights in a side file, checks
// the files, loads them back and runs the saved model in ONNX Runtime.
// ppocr-det keeps every weight in Constant nodes, mnist-8 in initializers.
func TestExternalData(t *testing.T) {
	tests := []struct {
		model  string
		inputs func(t *testing.T) map[string]*onnx.Tensor
	}{
		{"mnist-8.onnx", mnistInput},
		{"ppocr-det.onnx", func(*testing.T) map[string]*onnx.Tensor { return map[string]*onnx.Tensor{"x": ppocrInput(1)} }},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			m := onnxtest.Model(t, tc.model)
			dir := t.TempDir()
			path := filepath.Join(dir, "saved.onnx")
			if err := m.SaveFile(path, onnx.SaveOptions{ExternalData: true}); err != nil {
				t.Fatal(err)
			}
			modelSize, dataSize := fileSize(t, path), fileSize(t, path+".data")
			src := mustBytes(t, m)
			if dataSize == 0 || modelSize+dataSize < int64(len(src)) || modelSize > int64(len(src))/2 {
				t.Errorf("saved %d bytes of model and %d of data from a %d-byte model: weights did not move to the side file", modelSize, dataSize, len(src))
			}
			// The Model in memory keeps its data inline.
			if b := mustBytes(t, m); !proto.Equal(m.Proto, mustLoad(t, b).Proto) || len(b) != len(src) {
				t.Errorf("SaveFile changed the model in memory")
			}
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := onnx.Load(saved); err == nil || !strings.Contains(err.Error(), "load the model with LoadFile") {
				t.Errorf("Load of a model with external data: error = %v, want a pointer to LoadFile", err)
			}
			back, err := onnx.LoadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(m.Proto, back.Proto) {
				t.Errorf("model loaded from external data differs from the original")
			}
			want := run(t, session(t, tc.model, src, ort.Options{}), tc.inputs(t))
			got := run(t, session(t, "saved.onnx", saved, ort.Options{ExternalDataDir: dir}), tc.inputs(t))
			sameOutputs(t, "external data", want, got, 0)
		})
	}
}

func TestExternalDataErrors(t *testing.T) {
	m := onnxtest.Model(t, "mnist-8.onnx")
	dir := t.TempDir()
	path := filepath.Join(dir, "m.onnx")
	if err := m.SaveFile(path, onnx.SaveOptions{ExternalData: true, ExternalFile: "weights.bin"}); err != nil {
		t.Fatal(err)
	}
	if err := m.SaveFile(path, onnx.SaveOptions{ExternalData: true, ExternalFile: "../escape.bin"}); err == nil || !strings.Contains(err.Error(), "ExternalFile") {
		t.Errorf("escaping ExternalFile: error = %v", err)
	}
	if err := os.Truncate(filepath.Join(dir, "weights.bin"), 100); err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.LoadFile(path); err == nil || !strings.Contains(err.Error(), "past the file's 100 bytes") {
		t.Errorf("truncated data file: error = %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "weights.bin")); err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.LoadFile(path); err == nil || !strings.Contains(err.Error(), "weights.bin") {
		t.Errorf("missing data file: error = %v", err)
	}
	// A location outside the model's directory is refused.
	evil := onnxtest.Model(t, "mnist-8.onnx")
	tp := evil.Proto.GetGraph().GetInitializer()[0]
	tp.RawData, tp.FloatData = nil, nil
	tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	tp.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("../../etc/passwd")}}
	evilPath := filepath.Join(dir, "evil.onnx")
	if err := os.WriteFile(evilPath, mustMarshal(t, evil.Proto), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := onnx.LoadFile(evilPath); err == nil || !strings.Contains(err.Error(), "must be a relative path inside the model's directory") {
		t.Errorf("escaping location: error = %v", err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func mustLoad(t *testing.T, b []byte) *onnx.Model {
	t.Helper()
	m, err := onnx.Load(b)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
