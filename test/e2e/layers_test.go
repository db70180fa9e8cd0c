//go:build e2e

package e2e

import (
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

// layeredJob prunes with hessian, each block calibrated on the original
// model's inputs, with its blocks dealt to layers workers and its data
// passes to 2 shards, then quantizes to static int8.
func layeredJob(t *testing.T, ns, name string, layers int32) *v1alpha1.CompressionJob {
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2, Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}
	cpj.Spec.Evaluation.Samples = 256
	cpj.Spec.Stages[0].Prune = &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.6", CalibrationSamples: 128}
	return cpj
}

// Model parallelism on a cluster: with layers: 3 the hessian stage runs
// as an Indexed Job of 3 pods, each pruning one of mnist-8's 3 blocks
// (with its 2 data shards as workers of its own) and handing its partial
// to index 0 through S3, which assembles and publishes the model layers:
// 1 writes, to the digest. The int8 stage after it, not a Hessian one,
// runs as an Indexed Job of its 2 shards in both jobs.
func TestLayerIndexedJob(t *testing.T) {
	const ns = "e2e-layers"
	one, two := record(t, ns, "one"), record(t, ns, "two")
	apply(t, ns, manifest(t, layeredJob(t, ns, "one", 1)))
	apply(t, ns, manifest(t, layeredJob(t, ns, "two", 3)))
	want := one.waitFor(t, 3*time.Minute, "Ready", ready).Object
	got := two.waitFor(t, 3*time.Minute, "Ready", ready).Object
	for i, s := range got.Status.Stages {
		w := want.Status.Stages[i]
		if s.Output == nil || w.Output == nil || s.Output.Digest != w.Output.Digest {
			t.Errorf("stage %s: layers 3 wrote %+v, layers 1 %+v", s.Name, s.Output, w.Output)
		}
	}
	wantJobs := map[string]string{
		"one/prune": `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"one/int8":  `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"two/prune": `mode Indexed, completions 3, succeeded 3, completed indexes "0-2"`,
		"two/int8":  `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
	}
	for _, name := range []string{"one", "two"} {
		for _, j := range jobsOf(t, ns, name) {
			stage := j.Labels[controllers.LabelStage]
			got := fmt.Sprintf("mode %s, completions %d, succeeded %d, completed indexes %q",
				ptr.Deref(j.Spec.CompletionMode, batchv1.NonIndexedCompletion), ptr.Deref(j.Spec.Completions, 1), j.Status.Succeeded, j.Status.CompletedIndexes)
			if want := wantJobs[name+"/"+stage]; got != want {
				t.Errorf("job %s, stage %s: %s, want %s", name, stage, got, want)
			}
		}
	}
}
