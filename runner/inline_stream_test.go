package runner

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// A stage that reads a model in one file tensor by tensor (hessian
// pruning, weight-only int4 by round to nearest and by GPTQ) publishes
// the same bytes, digest and metrics as when it reads the model whole.
func TestStageStreamsAModelInOneFile(t *testing.T) {
	orttest.Require(t)
	dir := t.TempDir()
	cfg := modelgen.SmallDecoder
	cfg.Hidden = 128 // every linear weight 64 KiB or more: left in the file
	raw, err := modelgen.Decoder(cfg).Bytes()
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "model.onnx"), raw, 0o644)
	}
	if err == nil {
		err = dataset.WriteNPZFile(filepath.Join(dir, "tokens.npz"), modelgen.DecoderTokens(cfg, 16, 16, 2)...)
	}
	if err != nil {
		t.Fatal(err)
	}
	gptq := int4Stage()
	gptq.Name, gptq.Quantize.Algorithm = "gptq", v1alpha1.AlgorithmGPTQ
	hessian := v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{
		Method: v1alpha1.PruneHessian, Sparsity: "0.5", CalibrationSamples: 16,
	}}}
	for _, stage := range []v1alpha1.Stage{hessian, int4Stage(), gptq} {
		t.Run(stage.Name, func(t *testing.T) {
			run := func(out string) (digest string, metrics map[string]string) {
				t.Helper()
				spec := &v1alpha1.CompressionJobSpec{
					Source:     v1alpha1.ModelSource{URI: storage.FileURI(filepath.Join(dir, "model.onnx"))},
					Output:     v1alpha1.OutputSpec{URI: storage.FileURI(filepath.Join(dir, out))},
					Dataset:    &v1alpha1.DatasetSpec{URI: storage.FileURI(filepath.Join(dir, "tokens.npz")), Format: v1alpha1.DatasetFormatNPZ},
					Evaluation: v1alpha1.EvaluationSpec{Samples: 8, LatencyBatchSize: 1, LatencyRuns: 2},
					Stages:     []v1alpha1.Stage{stage},
				}
				res, err := Execute(context.Background(), firstTask(t, spec), Options{})
				if err != nil {
					t.Fatalf("Execute: %v (%s)", err, res.Message)
				}
				if len(res.Output.Files) != 0 {
					t.Errorf("a model in one file was published with external data: %+v", res.Output.Files)
				}
				return res.Output.Digest, deterministic(res.Output.Metrics)
			}
			if !streamsInline(stage.StageBody) {
				t.Fatal("the stage does not stream a model in one file")
			}
			streamedDigest, streamedMetrics := run(stage.Name + "-streamed")
			defer func(f func(v1alpha1.StageBody) bool) { streamInline = f }(streamInline)
			streamInline = func(v1alpha1.StageBody) bool { return false }
			wholeDigest, wholeMetrics := run(stage.Name + "-whole")
			if streamedDigest != wholeDigest {
				t.Errorf("streamed, the stage published %s; reading the model whole, %s", streamedDigest, wholeDigest)
			}
			if diff := cmp.Diff(wholeMetrics, streamedMetrics); diff != "" {
				t.Errorf("metrics (-whole +streamed):\n%s", diff)
			}
		})
	}
}

// Opening a model in one file for a stage that streams it copies the
// file to the stage's folder and holds its structure only: what it
// allocates is a small part of the file's bytes (reading the file whole
// into memory first, as the stage did before, allocates all of them),
// and the digest is the file's.
func TestStreamedStageDoesNotHoldTheFile(t *testing.T) {
	dir := t.TempDir()
	cfg := modelgen.SmallDecoder
	cfg.Hidden = 256 // the weights outweigh what is read at once (tensors under 64 KiB)
	raw, err := modelgen.Decoder(cfg).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(src, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	stage := v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.5"}}
	ref := pipeline.Ref{URI: storage.FileURI(src)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	sm, err := openStoredModel(context.Background(), storage.Default, ref, filepath.Join(dir, "scratch"), stage, true)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > uint64(len(raw))/4 {
		t.Errorf("opening a %d-byte model allocated %d bytes, want under a quarter of the file", len(raw), got)
	}
	if want := storage.Digest(raw); sm.digest != want || sm.size != int64(len(raw)) {
		t.Errorf("digest %s, size %d; want the file's %s, %d", sm.digest, sm.size, want, len(raw))
	}
	if sm.raw != nil || sm.model == nil {
		t.Errorf("stored model holds %d bytes of the file, model %v: want the model, not the file", len(sm.raw), sm.model != nil)
	}
}
