package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// The final stage writes release.json beside its model: every stage's spec,
// cache key and output, the source digest it started from, the runner
// version and the final metrics; a cached re-run writes it when missing.
func TestReleaseManifest(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	prune := v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
		Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}
	spec, dir := fixture(t, prune, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task0 := firstTask(t, spec)
	res0, err := Execute(ctx, task0, Options{})
	if err != nil {
		t.Fatalf("stage 0: %v", err)
	}
	if ok, _ := storage.Exists(ctx, ReleaseURI(task0)); ok {
		t.Error("a stage that is not the last wrote release.json")
	}
	task1, err := pipeline.NewTask("test/job", spec, 1, pipeline.Ref{URI: res0.Output.URI, Digest: res0.Output.Digest}, pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	task1.SetChain(spec, []v1alpha1.StageStatus{{Name: "prune", CacheKey: task0.CacheKey, Output: res0.Output}})
	res1, err := Execute(ctx, task1, Options{})
	if err != nil {
		t.Fatalf("stage 1: %v", err)
	}

	src, err := os.ReadFile(filepath.Join(dir, "mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	want := Release{
		Version: ReleaseVersion,
		Model:   *res1.Output,
		Source:  pipeline.Ref{URI: spec.Source.URI, Digest: storage.Digest(src)},
		Dataset: task1.Dataset, Evaluation: spec.Evaluation,
		Stages: []pipeline.ChainLink{
			{Stage: task0.Stage, CacheKey: task0.CacheKey, Output: pipeline.Ref{URI: res0.Output.URI, Digest: res0.Output.Digest}},
			{Stage: task1.Stage, CacheKey: task1.CacheKey, Output: pipeline.Ref{URI: res1.Output.URI, Digest: res1.Output.Digest}},
		},
		Report:        pipeline.SiblingURI(res1.Output.URI, pipeline.ReportFile),
		RunnerVersion: pipeline.Version, CacheVersion: pipeline.Version,
	}
	got := readRelease(t, ReleaseURI(task1))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release.json (-want +got):\n%s", diff)
	}
	// The report beside the model plots the chain: the model against the
	// source, both stages' bars, the layers the prune stage pruned and the
	// quantize stage stored in 8 bits. It draws no gate: the model is
	// every job's that produces it.
	page, _, err := storage.ReadAll(ctx, want.Report, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`<svg id="tradeoff-bytes"`, `<svg id="stages"`, `<svg id="layers"`, `data-variant="final"`, `<rect class="source"`,
		`<title>prune: `, `<title>int8: `, `bar-sparsity`, `<title>Convolution28 (Parameter5) 8 bits</title>`, `<title>Convolution28 (Parameter5) sparsity `} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("report.html has no %s", s)
		}
	}
	if bytes.Contains(page, []byte(`class="gate"`)) {
		t.Error("the report beside a model draws a job's gate")
	}
	if ok, _ := storage.Exists(ctx, pipeline.SiblingURI(res0.Output.URI, pipeline.ReportFile)); ok {
		t.Error("a stage that is not the last wrote report.html")
	}

	// A release.json lost (or written by a runner that predates it) comes
	// back from the cached result, identical.
	if err := storage.Delete(ctx, ReleaseURI(task1)); err != nil {
		t.Fatal(err)
	}
	again, err := Execute(ctx, task1, Options{})
	if err != nil || !again.Cached {
		t.Fatalf("re-run: cached=%t, %v", again.Cached, err)
	}
	if diff := cmp.Diff(want, readRelease(t, ReleaseURI(task1))); diff != "" {
		t.Errorf("release.json rewritten from the cache (-want +got):\n%s", diff)
	}
}

// An existing release.json is never replaced.
func TestReleaseManifestIsWriteOnce(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	if _, err := storage.WriteBytes(ctx, ReleaseURI(task), []byte(`{"kept":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := Execute(ctx, task, Options{}); err != nil {
		t.Fatal(err)
	}
	b, _, err := storage.ReadAll(ctx, ReleaseURI(task), "")
	if err != nil || string(b) != `{"kept":true}` {
		t.Fatalf("release.json = %q, %v; want the existing one kept", b, err)
	}
}

func readRelease(t *testing.T, uri string) Release {
	t.Helper()
	b, _, err := storage.ReadAll(context.Background(), uri, "")
	if errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("no release.json at %s", uri)
	}
	if err != nil {
		t.Fatal(err)
	}
	var r Release
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("release.json: %v\n%s", err, b)
	}
	return r
}
