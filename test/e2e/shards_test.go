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

// shardedJob prunes with hessian then quantizes calibrated by entropy,
// with spec.parallelism.shards set.
func shardedJob(t *testing.T, ns, name string, shards int32) *v1alpha1.CompressionJob {
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: shards}
	cpj.Spec.Evaluation.Samples = 256
	cpj.Spec.Stages[0].Prune = &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.6", CalibrationSamples: 128}
	cpj.Spec.Stages[1].Quantize.Calibration = v1alpha1.Calibration{Method: v1alpha1.CalibrationEntropy, Samples: 128}
	return cpj
}

// The target on a cluster: with shards: 4 each stage runs as an
// Indexed Job whose 4 indices all succeed (4 runner processes per stage,
// exchanging partial statistics through S3), and the job writes the
// models shards: 1 writes, to the digest, with the same accuracy.
func TestIndexedJobShards(t *testing.T) {
	const ns = "e2e-shards"
	one, four := record(t, ns, "one"), record(t, ns, "four")
	apply(t, ns, manifest(t, shardedJob(t, ns, "one", 1)))
	apply(t, ns, manifest(t, shardedJob(t, ns, "four", 4)))
	want := one.waitFor(t, 5*time.Minute, "Ready", ready).Object
	got := four.waitFor(t, 5*time.Minute, "Ready", ready).Object
	for i, s := range got.Status.Stages {
		w := want.Status.Stages[i]
		if s.Output == nil || w.Output == nil || s.Output.Digest != w.Output.Digest {
			t.Errorf("stage %s: shards 4 wrote %+v, shards 1 %+v", s.Name, s.Output, w.Output)
			continue
		}
		if s.Output.Metrics["accuracy"] != w.Output.Metrics["accuracy"] {
			t.Errorf("stage %s: accuracy %s with 4 shards, %s with 1", s.Name, s.Output.Metrics["accuracy"], w.Output.Metrics["accuracy"])
		}
	}
	for _, j := range jobsOf(t, ns, "four") {
		got := fmt.Sprintf("mode %s, completions %d, succeeded %d, completed indexes %q",
			ptr.Deref(j.Spec.CompletionMode, ""), ptr.Deref(j.Spec.Completions, 0), j.Status.Succeeded, j.Status.CompletedIndexes)
		if want := `mode Indexed, completions 4, succeeded 4, completed indexes "0-3"`; got != want {
			t.Errorf("Job %s (stage %s): %s, want %s", j.Name, j.Labels[controllers.LabelStage], got, want)
		}
	}
	for _, j := range jobsOf(t, ns, "one") {
		if ptr.Deref(j.Spec.CompletionMode, batchv1.NonIndexedCompletion) != batchv1.NonIndexedCompletion {
			t.Errorf("Job %s of shards: 1 is %s, want one pod", j.Name, *j.Spec.CompletionMode)
		}
	}
	if n := len(startsIn(ns)); n != 2+2*4 {
		t.Errorf("%d runner processes, want 2 for shards: 1 and 8 (4 per stage) for shards: 4", n)
	}
}
