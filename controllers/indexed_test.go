package controllers_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
)

// indexedSpec is the part of a Job's spec that makes it an Indexed Job.
type indexedSpec struct {
	Mode                              *batchv1.CompletionMode
	Completions, Parallelism          *int32
	BackoffLimit, PerIndex, MaxFailed *int32
	Indexed                           bool
}

func indexedOf(t *testing.T, job *batchv1.Job) indexedSpec {
	return indexedSpec{
		Mode: job.Spec.CompletionMode, Completions: job.Spec.Completions, Parallelism: job.Spec.Parallelism,
		BackoffLimit: job.Spec.BackoffLimit, PerIndex: job.Spec.BackoffLimitPerIndex, MaxFailed: job.Spec.MaxFailedIndexes,
		Indexed: taskOf(t, job).Indexed,
	}
}

// indexPod starts the pod of index i of an Indexed Job, as the Job
// controller names its index.
func (e *env) indexPod(t *testing.T, job *batchv1.Job, i string) *corev1.Pod {
	t.Helper()
	pod := e.startPod(t, job, "node-"+i)
	pod.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: i}
	if err := e.client.Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

// The API server takes the Indexed Job; the controller reads the stage's
// result from index 0 (the others report only that they shared their
// partials), and a failed index is named in the status and the event.
func TestIndexedJob(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "shards", pruneStage("prune"), quantizeStage("int8"))
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 4}
	e.create(t, cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	want := indexedSpec{
		Mode: ptr.To(batchv1.IndexedCompletion), Completions: ptr.To[int32](4), Parallelism: ptr.To[int32](4),
		BackoffLimit: ptr.To[int32](2147483647), PerIndex: ptr.To[int32](2), MaxFailed: ptr.To[int32](0), Indexed: true,
	}
	if diff := cmp.Diff(want, indexedOf(t, &job)); diff != "" {
		t.Errorf("the stored Job's spec (-want +got):\n%s", diff)
	}

	// Index 0 starts first: the newest pods are the other indices', whose
	// messages are not a result.
	task := taskOf(t, &job)
	r := resultFor(task, map[string]string{"accuracy": "0.98"})
	zero := e.indexPod(t, &job, "0")
	e.finishPod(t, zero, 0, termMessage(t, r))
	for _, i := range []string{"1", "2", "3"} {
		follower := pipeline.Result{Version: pipeline.ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey,
			Message: "index " + i + " of 4 shared its partial statistics; index 0 publishes the stage"}
		e.finishPod(t, e.indexPod(t, &job, i), 0, termMessage(t, follower))
	}
	e.completeJob(t, &job)
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "stage prune succeeded", func(c *v1alpha1.CompressionJob) bool {
		return stageState(c, 0) == v1alpha1.StageSucceeded
	})
	if out := got.Status.Stages[0].Output; out == nil || out.Digest != r.Output.Digest {
		t.Errorf("stage prune's output %+v, want index 0's %s", out, r.Output.Digest)
	}

	jobs := e.waitJobs(t, cpj, 2)
	var int8Job batchv1.Job
	for _, j := range jobs {
		if j.Name != job.Name {
			int8Job = j
		}
	}
	failed := e.indexPod(t, &int8Job, "2")
	e.finishPod(t, failed, 1, "round calibration-range: index 3 of 4 did not share its partial statistics within 30m0s")
	e.setJobStatus(t, &int8Job, func(st *batchv1.JobStatus) { st.FailedIndexes = ptr.To("2") })
	e.failJob(t, &int8Job, batchv1.JobReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes", 3)
	got = e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, batchv1.JobReasonMaxFailedIndexesExceeded)
	})
	msg := got.Status.Stages[1].Message
	for _, s := range []string{"runner of index 2 of 4 exited with code 1: round calibration-range: index 3 of 4 did not share", "(failed indexes: 2)"} {
		if !strings.Contains(msg, s) {
			t.Errorf("stage int8's message %q does not say %q", msg, s)
		}
	}
	e.waitEvent(t, cpj, controllers.EventStageFailed, "runner of index 2 of 4 exited with code 1")
}

// A hessian prune stage with parallelism.layers runs as an Indexed Job of
// one pod per layer worker (the data shards then run inside each index);
// the next stage, not a Hessian one, is an Indexed Job of its shards.
func TestLayerIndexedJob(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	hessian := pruneStage("prune")
	hessian.Prune.Method = v1alpha1.PruneHessian
	cpj := newCPJ(ns, "layers", hessian, quantizeStage("int8"))
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 4, Layers: 2, LayerInputs: v1alpha1.LayerInputsOriginal}
	e.create(t, cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	indexed := func(n int32) indexedSpec {
		return indexedSpec{
			Mode: ptr.To(batchv1.IndexedCompletion), Completions: ptr.To(n), Parallelism: ptr.To(n),
			BackoffLimit: ptr.To[int32](2147483647), PerIndex: ptr.To[int32](2), MaxFailed: ptr.To[int32](0), Indexed: true,
		}
	}
	if diff := cmp.Diff(indexed(2), indexedOf(t, &job)); diff != "" {
		t.Errorf("the stored Job of the hessian stage (-want +got):\n%s", diff)
	}
	if task := taskOf(t, &job); !task.LayerIndexed() || task.Layers != 2 || task.Shards != 4 {
		t.Errorf("task: layer indexed %v, layers %d, shards %d; want true, 2, 4", task.LayerIndexed(), task.Layers, task.Shards)
	}

	task := taskOf(t, &job)
	r := resultFor(task, map[string]string{"accuracy": "0.98"})
	e.finishPod(t, e.indexPod(t, &job, "0"), 0, termMessage(t, r))
	follower := pipeline.Result{Version: pipeline.ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey,
		Message: "index 1 of 2 shared its layers' partial; index 0 assembles and publishes the stage"}
	e.finishPod(t, e.indexPod(t, &job, "1"), 0, termMessage(t, follower))
	e.completeJob(t, &job)
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "stage prune succeeded", func(c *v1alpha1.CompressionJob) bool {
		return stageState(c, 0) == v1alpha1.StageSucceeded
	})
	if out := got.Status.Stages[0].Output; out == nil || out.Digest != r.Output.Digest {
		t.Errorf("stage prune's output %+v, want index 0's %s", out, r.Output.Digest)
	}
	for _, j := range e.waitJobs(t, cpj, 2) {
		if j.Name == job.Name {
			continue
		}
		if diff := cmp.Diff(indexed(4), indexedOf(t, &j)); diff != "" {
			t.Errorf("the stored Job of the int8 stage (-want +got):\n%s", diff)
		}
	}
}
