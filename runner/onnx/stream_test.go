package onnx_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// writeDecoder writes the small generated decoder with its weights in
// an external data file and returns the model's path.
func writeDecoder(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := modelgen.WriteDecoderExternal(modelgen.SmallDecoder, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func weightValues(t *testing.T, m *onnx.Model) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	for _, w := range m.Weights() {
		if w.DType != onnx.Float {
			continue
		}
		v, err := w.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out[w.Name] = v
	}
	return out
}

// OpenFile leaves big tensors in their file and reads them when asked;
// a weight set in memory and the ones left streamed are saved together
// (the streamed ones copied file to file), the model in memory still
// streams afterwards, and the saved files hold what LoadFile reads.
func TestOpenFileStreams(t *testing.T) {
	path := writeDecoder(t)
	loaded, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := weightValues(t, loaded)
	m, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if dir, err := m.ExternalDir(); !m.Streamed() || err != nil || dir != filepath.Dir(path) {
		t.Fatalf("Streamed() = %v, ExternalDir() = %q, %v: want big weights left in %s", m.Streamed(), dir, err, filepath.Dir(path))
	}
	if diff := cmp.Diff(want, weightValues(t, m)); diff != "" {
		t.Errorf("streamed weights differ from loaded ones (-loaded +streamed):\n%s", diff)
	}
	if _, err := m.Bytes(); err == nil || !strings.Contains(err.Error(), "save the model with Save") {
		t.Errorf("Bytes of a streamed model: error = %v", err)
	}
	// Change one streamed weight.
	w := m.Weight("h.0.mlp.c_fc.weight")
	v := want["h.0.mlp.c_fc.weight"]
	half := make([]float32, len(v))
	for i := range v {
		half[i] = v[i] / 2
	}
	if err := w.Set(onnx.NewTensor(w.Dims, half)); err != nil {
		t.Fatal(err)
	}
	want["h.0.mlp.c_fc.weight"] = half
	out := filepath.Join(t.TempDir(), "out.onnx")
	saved, err := m.Save(out, onnx.SaveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(saved) != 2 || filepath.Base(saved[1].Path) != "out.onnx.data" {
		t.Errorf("saved %+v, want the model and out.onnx.data", saved)
	}
	back, err := onnx.LoadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, weightValues(t, back)); diff != "" {
		t.Errorf("saved weights (-want +got):\n%s", diff)
	}
	if !m.Streamed() {
		t.Error("after Save the model no longer streams from its source")
	}
	if diff := cmp.Diff(want, weightValues(t, m)); diff != "" {
		t.Errorf("weights in memory after Save (-want +got):\n%s", diff)
	}
	// Saving over the file the weights stream from would destroy them.
	if _, err := m.Save(path, onnx.SaveOptions{}); err == nil || !strings.Contains(err.Error(), "streams its weights from") {
		t.Errorf("saving over the source: error = %v", err)
	}
}

// ONNX Runtime runs a streamed model from its header and the source
// directory, as LoadFile's copy in memory.
func TestStreamedModelRuns(t *testing.T) {
	path := writeDecoder(t)
	m, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sameRun(t, "streamed", m, loaded)
}

// sameRun runs the streamed model m in ONNX Runtime (its header, its
// tensors read from its folder) and the model read whole on two token
// sequences, and fails unless their outputs are the same.
func sameRun(t *testing.T, label string, m, whole *onnx.Model) {
	t.Helper()
	data, err := feed.FromDataset(feed.Inputs(whole), &dataset.Dataset{Name: "tokens", Arrays: modelgen.DecoderTokens(modelgen.SmallDecoder, 2, 8, 1)})
	if err != nil {
		t.Fatal(err)
	}
	in, err := data.Tensors([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	header, err := m.HeaderBytes()
	if err != nil {
		t.Fatal(err)
	}
	want := run(t, session(t, "whole", mustBytes(t, whole), ort.Options{}), in)
	dir, err := m.ExternalDir()
	if err != nil {
		t.Fatal(err)
	}
	got := run(t, session(t, label, header, ort.Options{ExternalDataDir: dir}), in)
	sameOutputs(t, label, want, got, 0)
}

// A streamed tensor whose bytes in its file do not match its dims, or
// whose location leaves the model's folder, is refused by OpenFile,
// naming the tensor and the location.
func TestOpenFileChecksReferences(t *testing.T) {
	for _, tc := range []struct {
		name, key, value, say string
	}{
		{"short", "length", "4", `external data "model.onnx.data" holds 4 bytes for it, but FLOAT`},
		{"escaping", "location", "../model.onnx.data", `location "../model.onnx.data" must be a relative path inside the model's directory`},
		{"absolute", "location", "/model.onnx.data", `location "/model.onnx.data" must be a relative path inside`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeDecoder(t)
			m, err := onnx.LoadHeader(mustRead(t, path))
			if err != nil {
				t.Fatal(err)
			}
			var name string
			for _, tp := range m.Proto.GetGraph().GetInitializer() {
				if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL || tp.GetDataType() != int32(onnx.Float) {
					continue
				}
				name = tp.GetName()
				for _, e := range tp.ExternalData {
					if e.GetKey() == tc.key {
						e.Value = proto.String(tc.value)
					}
				}
				break
			}
			b, err := m.HeaderBytes()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err = onnx.OpenFile(path)
			if !errors.Is(err, onnx.ErrInvalid) || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), `tensor "`+name+`"`) {
				t.Errorf("OpenFile: %v; want ErrInvalid naming tensor %q and saying %q", err, name, tc.say)
			}
		})
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
