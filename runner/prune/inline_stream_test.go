package prune

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// A model in one file opened by onnx.OpenFile (its weights left in the
// file, read tensor by tensor) is pruned by hessian to the very bytes the
// model read whole gives: block by block, and by the whole-model path,
// whose passes run the model with the weights pruned so far (spilled to
// the scratch file, read back for ONNX Runtime).
func TestHessianStreamsAModelInOneFile(t *testing.T) {
	orttest.Require(t)
	raw, path, calib := decoderInOneFile(t)
	spec := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 16}
	saved := func(m *onnx.Model, blocks bool) []byte {
		t.Helper()
		p, rep := mustPrune(t, m, spec, calib)
		if (rep.Hessian.Blocks > 0) != blocks {
			t.Fatalf("%d blocks (%q), want block by block: %v", rep.Hessian.Blocks, rep.Hessian.WholeModel, blocks)
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
	for _, blocks := range []bool{true, false} {
		if !blocks {
			defer func(c func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string)) { cutBlocks = c }(cutBlocks)
			cutBlocks = func(*onnxpb.GraphProto, [][]*onnxpb.NodeProto) (*layerwise.Plan, string) { return nil, "test" }
		}
		loaded, err := onnx.Load(raw)
		if err != nil {
			t.Fatal(err)
		}
		want := saved(loaded, blocks)
		streamed, err := onnx.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !streamed.Streamed() {
			t.Fatal("OpenFile read the model whole")
		}
		if got := saved(streamed, blocks); !bytes.Equal(got, want) {
			t.Errorf("block by block %v: the streamed model prunes to %d bytes, not the %d bytes of the model read whole", blocks, len(got), len(want))
		}
	}
}

// decoderInOneFile writes a small decoder in one file whose every linear
// weight is 64 KiB or more (left in the file by onnx.OpenFile) and
// returns its bytes, its path and calibration tokens for it.
func decoderInOneFile(t *testing.T) ([]byte, string, *dataset.Dataset) {
	t.Helper()
	cfg := modelgen.SmallDecoder
	cfg.Hidden = 128
	raw, err := modelgen.Decoder(cfg).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return raw, path, &dataset.Dataset{Name: "tokens", Arrays: modelgen.DecoderTokens(cfg, 16, 32, 1)}
}

// Pruned by hessian block by block, a model streamed from its file keeps
// its pruned weights in its scratch file, each block's written there once
// the walk is past it (onnx.Model.Spill): the pruned model holds none of
// them in memory, where the model read whole holds them all.
func TestHessianSpillsPrunedWeights(t *testing.T) {
	orttest.Require(t)
	raw, path, calib := decoderInOneFile(t)
	spec := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 16}
	held := func(m *onnx.Model) (int64, int64) {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p, rep := mustPrune(t, m, spec, calib)
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(p)
		runtime.KeepAlive(m) // the source is not what is measured
		return int64(after.HeapAlloc) - int64(before.HeapAlloc), 4 * rep.Params
	}
	loaded, err := onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	whole, pruned := held(loaded)
	streamed, err := onnx.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	spilled, _ := held(streamed)
	t.Logf("%d bytes of pruned weights: the pruned model holds %d bytes read whole, %d streamed", pruned, whole, spilled)
	if whole < pruned {
		t.Fatalf("the model read whole holds %d bytes, less than its %d bytes of pruned weights: the test measures nothing", whole, pruned)
	}
	if spilled > pruned/8 {
		t.Errorf("the streamed model holds %d bytes after pruning, over %d: its %d bytes of pruned weights are held", spilled, pruned/8, pruned)
	}
}
