package prune

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// A model in one file opened by onnx.OpenFile (its weights left in the
// file, read tensor by tensor) is pruned by hessian, block by block, to
// the very bytes the model read whole gives.
func TestHessianStreamsAModelInOneFile(t *testing.T) {
	orttest.Require(t)
	cfg := modelgen.SmallDecoder
	cfg.Hidden = 128 // every linear weight 64 KiB or more: left in the file
	raw, err := modelgen.Decoder(cfg).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	calib := &dataset.Dataset{Name: "tokens", Arrays: modelgen.DecoderTokens(cfg, 16, 32, 1)}
	spec := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 16}
	saved := func(m *onnx.Model) []byte {
		t.Helper()
		p, rep := mustPrune(t, m, spec, calib)
		if rep.Hessian.Blocks == 0 {
			t.Fatalf("not pruned block by block: %q", rep.Hessian.WholeModel)
		}
		out := filepath.Join(t.TempDir(), "out.onnx")
		if _, err := p.Save(out, onnx.SaveOptions{ExternalData: p.WantsExternalData()}); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	loaded, err := onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := saved(loaded)
	streamed, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !streamed.Streamed() {
		t.Fatal("OpenFile read the model whole")
	}
	if got := saved(streamed); !bytes.Equal(got, want) {
		t.Errorf("the streamed model prunes to %d bytes, not the %d bytes of the model read whole", len(got), len(want))
	}
}
