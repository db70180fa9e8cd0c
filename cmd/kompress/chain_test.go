package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// chainJob writes the sample job with stages (YAML list items) before its
// int8 stage and returns the file.
func chainJob(t *testing.T, stages string) string {
	t.Helper()
	jobFile, dir := sampleJob(t, "")
	job := strings.Replace(readFile(t, jobFile), "  stages:\n", "  stages:\n"+stages, 1)
	chain := filepath.Join(dir, "chain.yaml")
	if err := os.WriteFile(chain, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return chain
}

// The canonical chain: prune, then quantize. Quantization must keep the
// pruned weights at zero, and each stage's status carries its own metrics.
func TestRunPruneThenQuantize(t *testing.T) {
	orttest.Require(t)
	chain := chainJob(t, `  - name: prune
    type: Prune
    prune:
      method: magnitude
      sparsity: "0.5"
`)
	out, stderr, code := cli(t, "run", "-f", chain, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	got := decodeJob(t, out)
	if !meta.IsStatusConditionTrue(got.Status.Conditions, v1alpha1.ConditionReady) || got.Status.Progress != "2/2" {
		t.Fatalf("not Ready 2/2: %+v", got.Status.Conditions)
	}
	pruned, final := got.Status.Stages[0].Output, got.Status.Stages[1].Output
	metric := func(a *v1alpha1.Artifact, k string) float64 {
		v, err := strconv.ParseFloat(a.Metrics[k], 64)
		if err != nil {
			t.Fatalf("metric %s of %s: %v", k, a.URI, err)
		}
		return v
	}
	if s := metric(pruned, pipeline.MetricSparsity); s < 0.45 {
		t.Errorf("pruned model sparsity %.3f, want about 0.5", s)
	}
	if s := metric(final, pipeline.MetricSparsity); s < metric(pruned, pipeline.MetricSparsity)-0.01 {
		t.Errorf("quantization lost the mask: sparsity %.3f after, %.3f before", s, metric(pruned, pipeline.MetricSparsity))
	}
	if acc := metric(final, pipeline.MetricAccuracy); acc < 0.97 {
		t.Errorf("pruned+int8 accuracy %.4f on the 1k sample, want >= 0.97", acc)
	}
	if final.SizeBytes >= pruned.SizeBytes {
		t.Errorf("int8 (%d bytes) is not smaller than the pruned fp32 model (%d)", final.SizeBytes, pruned.SizeBytes)
	}
	if !strings.Contains(stderr, "[1/2 prune] transform") || !strings.Contains(stderr, "[2/2 int8] transform") {
		t.Errorf("stage progress missing:\n%s", stderr)
	}
}

// prune (80%, per layer) -> distill -> quantize: distillation recovers
// accuracy the pruning cost, keeps the mask, and quantization keeps it too.
func TestRunPruneDistillQuantize(t *testing.T) {
	orttest.Require(t)
	chain := chainJob(t, `  - name: prune
    type: Prune
    prune: {method: magnitude, sparsity: "0.8", scope: layer}
  - name: recover
    type: Distill
    distill: {epochs: 3, batchSize: 32, learningRate: "0.002", seed: 1}
`)
	out, stderr, code := cli(t, "run", "-f", chain, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	got := decodeJob(t, out)
	if got.Status.Progress != "3/3" {
		t.Fatalf("progress %s: %+v", got.Status.Progress, got.Status.Conditions)
	}
	metric := func(i int, k string) float64 {
		v, err := strconv.ParseFloat(got.Status.Stages[i].Output.Metrics[k], 64)
		if err != nil {
			t.Fatalf("stage %d metric %s: %v", i, k, err)
		}
		return v
	}
	pruned, distilled, final := metric(0, pipeline.MetricAccuracy), metric(1, pipeline.MetricAccuracy), metric(2, pipeline.MetricAccuracy)
	t.Logf("accuracy: pruned %.4f, distilled %.4f, int8 %.4f", pruned, distilled, final)
	if distilled < pruned+0.05 {
		t.Errorf("distillation did not recover: %.4f after pruning, %.4f after distillation", pruned, distilled)
	}
	for i := 0; i < 3; i++ {
		if s := metric(i, pipeline.MetricSparsity); s < 0.78 {
			t.Errorf("stage %d sparsity %.4f: the 80%% mask was lost", i, s)
		}
	}
	if final < distilled-0.01 {
		t.Errorf("int8 lost %.4f accuracy after distillation", distilled-final)
	}
	if !strings.Contains(stderr, "[2/3 recover]") || !strings.Contains(stderr, "steps") {
		t.Errorf("no distillation progress:\n%s", stderr)
	}
}

// A model pruned with sparse storage goes on to quantization: mnist-8 is
// IR 3, storing sparse initializers raises it to IR 6, and its weights must
// still be weights (not overridable graph inputs) for quantization to take.
func TestRunSparsePruneThenQuantize(t *testing.T) {
	orttest.Require(t)
	chain := chainJob(t, `  - name: prune
    type: Prune
    prune: {method: magnitude, sparsity: "0.8", storage: sparse}
`)
	out, stderr, code := cli(t, "run", "-f", chain, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	got := decodeJob(t, out)
	pruned, final := got.Status.Stages[0].Output, got.Status.Stages[1].Output
	if pruned.SizeBytes*100 >= 26454*40 {
		t.Errorf("80%% sparse storage wrote %d bytes, not under 40%% of the 26454-byte source", pruned.SizeBytes)
	}
	if s, _ := strconv.ParseFloat(final.Metrics[pipeline.MetricSparsity], 64); s < 0.79 {
		t.Errorf("int8 after sparse pruning: sparsity %.4f, want the 80%% mask kept", s)
	}
}
