package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
)

// fakeVariant publishes what a variant's final stage leaves in storage: a
// model, its result.json and its release.json.
func fakeVariant(t *testing.T, out, name string, bytes int, metrics map[string]string) *pipeline.Ref {
	t.Helper()
	ctx := context.Background()
	model := []byte(strings.Repeat(name, bytes/len(name)))
	key := fmt.Sprintf("%064x", bytes)
	uri := pipeline.ArtifactURI(out, key)
	obj, err := storage.WriteBytes(ctx, uri, model)
	if err != nil {
		t.Fatal(err)
	}
	art := &v1alpha1.Artifact{URI: uri, Digest: obj.Digest, SizeBytes: obj.Size, Metrics: metrics}
	res, _ := pipeline.Result{Version: pipeline.ContractVersion, Stage: "int8", CacheKey: key, Output: art}.Encode()
	if _, err := storage.WriteBytes(ctx, pipeline.SiblingURI(uri, pipeline.ResultFile), res); err != nil {
		t.Fatal(err)
	}
	rel, _ := json.Marshal(Release{Version: ReleaseVersion, Model: *art, Source: pipeline.Ref{URI: "file:///m/mnist-8.onnx", Digest: "sha256:" + strings.Repeat("a", 64)},
		Stages: []pipeline.ChainLink{{Stage: pipeline.StageSpec{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize}}, CacheKey: key, Output: pipeline.Ref{URI: uri, Digest: obj.Digest}}}})
	if _, err := storage.WriteBytes(ctx, pipeline.SiblingURI(uri, pipeline.ReleaseFile), rel); err != nil {
		t.Fatal(err)
	}
	return &pipeline.Ref{URI: uri, Digest: obj.Digest}
}

// The select step reads every variant's result, selects with the policy
// and writes the sweep's report.html, release.json (the selection and
// every alternative) and result.json under its key; run again, it is a
// cache hit. A variant whose result does not describe the model the task
// names is refused as bad input.
func TestSelectStep(t *testing.T) {
	ctx := context.Background()
	out := storage.FileURI(filepath.Join(t.TempDir(), "out"))
	m := func(drop, nonzero string) map[string]string {
		return map[string]string{pipeline.MetricAccuracy: "0.98", pipeline.MetricAccuracyDrop: drop, pipeline.MetricNonzeroParams: nonzero,
			pipeline.MetricSourceAccuracy: "0.987", pipeline.MetricSourceBytes: "26454", pipeline.MetricBytes: "1200"}
	}
	refs := []*pipeline.Ref{fakeVariant(t, out, "v1", 1200, m("0", "4204")), fakeVariant(t, out, "v2", 1201, m("0.007", "2410")), nil}
	params := []v1alpha1.VariantParameter{{Stage: "prune", Field: "sparsity", Values: []string{"0.3", "0.6", "0.9"}}}
	task := pipeline.Task{
		Version: pipeline.ContractVersion, Job: "ns/sweep", Index: 2, Stages: 3, Stage: pipeline.StageSpec{Name: pipeline.SelectStep},
		Source: pipeline.Ref{URI: "file:///m/mnist-8.onnx"}, RunnerVersion: pipeline.Version, CacheKey: strings.Repeat("5", 64),
		Select: &pipeline.SelectTask{Policy: v1alpha1.SelectMostAccurate, Acceptance: &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}, Parameters: params,
			Variants: []pipeline.SelectVariant{{Name: "v1", Values: []string{"0.3"}, Output: refs[0]}, {Name: "v2", Values: []string{"0.6"}, Output: refs[1]},
				{Name: "v3", Values: []string{"0.9"}, Reason: "BadInput", Message: "stage prune/v3 failed: too sparse"}}},
	}
	task.OutputURI = pipeline.JoinURI(out, task.CacheKey, pipeline.ReleaseFile)
	// Equal accuracy: mostAccurate breaks the tie by bytes, v1's 1200.
	res, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Output == nil || res.Output.URI != refs[0].URI || res.Cached || res.Validate(task) != nil {
		t.Fatalf("result %+v (%v), want v1's model", res, res.Validate(task))
	}
	rel := readRelease(t, task.OutputURI)
	type alt struct {
		Name   string
		Passed *bool
		Reason string
	}
	var alts []alt
	for _, a := range rel.Selection.Variants {
		alts = append(alts, alt{a.Name, a.Passed, a.Reason})
		if a.Model != nil && a.Release != pipeline.SiblingURI(a.Model.URI, pipeline.ReleaseFile) {
			t.Errorf("%s: release %s is not beside its model", a.Name, a.Release)
		}
	}
	yes := true
	if diff := cmp.Diff([]alt{{"v1", &yes, ""}, {"v2", &yes, ""}, {"v3", nil, "BadInput"}}, alts); diff != "" {
		t.Errorf("alternatives (-want +got):\n%s", diff)
	}
	if s := rel.Selection; s.Selected != "v1" || !s.Passed || s.Policy != v1alpha1.SelectMostAccurate || rel.Model.URI != refs[0].URI ||
		rel.Report != task.ReportURI() || len(rel.Stages) != 1 || rel.Source.Digest == "" {
		t.Errorf("release %+v", rel)
	}
	page, _, err := storage.ReadAll(ctx, task.ReportURI(), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`class="point passed selected" data-variant="v1"`, `data-variant="v2"`, `BadInput: stage prune/v3 failed: too sparse`, `class="gate"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html has no %s", want)
		}
	}

	again, err := Execute(ctx, task, Options{})
	if err != nil || !again.Cached || again.Output.URI != refs[0].URI {
		t.Errorf("again: cached %t, %+v, %v", again.Cached, again.Output, err)
	}

	tampered := task
	tampered.CacheKey = strings.Repeat("6", 64)
	tampered.OutputURI = pipeline.JoinURI(out, tampered.CacheKey, pipeline.ReleaseFile)
	sel := *task.Select
	sel.Variants = append([]pipeline.SelectVariant(nil), sel.Variants...)
	sel.Variants[1].Output = &pipeline.Ref{URI: refs[1].URI, Digest: "sha256:" + strings.Repeat("0", 64)}
	tampered.Select = &sel
	_, err = Execute(ctx, tampered, Options{})
	if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(fmt.Sprint(err), "does not describe that model") {
		t.Errorf("a variant's result that names another model: exit %d, %v", ExitCode(err), err)
	}
	if _, err := storage.Stat(ctx, tampered.ResultURI()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a failed select step wrote its result: %v", err)
	}
}
