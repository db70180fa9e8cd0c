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
)

// The canonical chain: prune, then quantize. Quantization must keep the
// pruned weights at zero, and each stage's status carries its own metrics.
func TestRunPruneThenQuantize(t *testing.T) {
	if testing.Short() {
		t.Skip("needs ONNX Runtime")
	}
	jobFile, dir := sampleJob(t, "")
	job := strings.Replace(readFile(t, jobFile), "  stages:\n", `  stages:
  - name: prune
    type: Prune
    prune:
      method: magnitude
      sparsity: "0.5"
`, 1)
	chain := filepath.Join(dir, "chain.yaml")
	if err := os.WriteFile(chain, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
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
