package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/test/controlplane"
)

// TestFailingStage fails the first of two stages in the ways the Job
// controller reports, and checks the run is Stalled with the reason and the
// runner's own message, and that the second stage never starts.
func TestFailingStage(t *testing.T) {
	e := sharedEnv(t)
	cases := []struct {
		name       string
		jobReason  string
		exitCode   int32
		term       string
		failedPods int32
		wantReason string
		wantInMsg  string
	}{
		{"bad input fails at once", batchv1.JobReasonPodFailurePolicy, pipeline.ExitBadInput,
			`{"version":"kompress.dev/v1","stage":"prune","reason":"BadInput","message":"model has no Conv or Gemm weights to prune"}`, 1,
			"BadInput", "BadInput: model has no Conv or Gemm weights to prune"},
		{"retries exhausted", batchv1.JobReasonBackoffLimitExceeded, pipeline.ExitFailure,
			"read s3://models/mnist-8.onnx: connection reset by peer", 3,
			v1alpha1.ReasonBackoffLimitExceeded, "runner exited with code 1: read s3://models/mnist-8.onnx: connection reset by peer"},
		{"stage deadline", batchv1.JobReasonDeadlineExceeded, 137, "", 1,
			v1alpha1.ReasonDeadlineExceeded, "runner exited with code 137"},
		// The runner's message fills the status message: the event's note
		// must still fit the API server's 1024-byte limit or it is lost.
		{"long runner message", batchv1.JobReasonPodFailurePolicy, pipeline.ExitBadInput,
			`{"version":"kompress.dev/v1","stage":"prune","reason":"BadInput","message":"graph check: ` + strings.Repeat("node x has no input; ", 60) + `"}`, 1,
			"BadInput", "BadInput: graph check: node x has no input;"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.namespace(t)
			cpj := newCPJ(ns, "fails", pruneStage("prune"), quantizeStage("int8"))
			e.create(t, cpj)
			job := e.waitJobs(t, cpj, 1)[0]
			pod := e.startPod(t, &job, "node-a")
			e.finishPod(t, pod, tc.exitCode, tc.term)
			e.failJob(t, &job, tc.jobReason, "Job failed: "+tc.jobReason, tc.failedPods)

			got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Stalled", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, tc.wantReason)
			})
			stalled := cond(got, v1alpha1.ConditionStalled)
			if !strings.Contains(stalled.Message, tc.wantInMsg) || !strings.Contains(stalled.Message, "stage prune failed") {
				t.Errorf("Stalled message %q does not carry %q", stalled.Message, tc.wantInMsg)
			}
			if r := cond(got, v1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != tc.wantReason {
				t.Errorf("Ready %s/%s, want False/%s", r.Status, r.Reason, tc.wantReason)
			}
			if c := cond(got, v1alpha1.ConditionReconciling); c.Status != metav1.ConditionFalse {
				t.Errorf("Reconciling is %s on a stalled run", c.Status)
			}
			if got.Status.Stages[0].State != v1alpha1.StageFailed || got.Status.Stages[0].Attempts != tc.failedPods ||
				got.Status.Stages[1].State != v1alpha1.StagePending || got.Status.CurrentStage != "prune" || got.Status.CompletionTime == nil {
				t.Errorf("stages %+v, current %q, completion %v", got.Status.Stages, got.Status.CurrentStage, got.Status.CompletionTime)
			}
			if s := kstatusOf(t, got); s != kstatus.FailedStatus {
				t.Errorf("kstatus %s, want Failed", s)
			}
			e.waitEvent(t, cpj, controllers.EventStageFailed, tc.wantInMsg)
			e.waitEvent(t, cpj, tc.wantReason, "stage prune failed")
			// The run stays stalled: no Job for the second stage appears.
			time.Sleep(300 * time.Millisecond)
			if n := len(e.jobs(t, cpj)); n != 1 {
				t.Errorf("%d Jobs after the first stage failed, want 1", n)
			}
		})
	}
}

// TestSuspendResume suspends a running stage and resumes it, and starts a
// job suspended so no Job is created until it is resumed.
func TestSuspendResume(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "pausable", pruneStage("prune"), quantizeStage("int8"))
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	job := e.waitJobs(t, cpj, 1)[0]

	setSuspend(t, e, key, true)
	got := e.waitCPJ(t, key, "Suspended", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspended) &&
			stageState(c, 0) == v1alpha1.StageSuspended
	})
	if r := cond(got, v1alpha1.ConditionReady); r.Status != metav1.ConditionFalse || r.Reason != v1alpha1.ReasonSuspended {
		t.Errorf("Ready while suspended: %s/%s", r.Status, r.Reason)
	}
	poll(t, "the stage Job suspended", func(ctx context.Context) (bool, error) {
		err := e.client.Get(ctx, client.ObjectKeyFromObject(&job), &job)
		return ptr.Deref(job.Spec.Suspend, false), err
	})
	e.waitEvent(t, cpj, controllers.EventJobSuspended, job.Name)
	e.waitEvent(t, cpj, v1alpha1.ReasonSuspended, "suspended at stage prune")

	setSuspend(t, e, key, false)
	e.waitCPJ(t, key, "resumed", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionSuspended, metav1.ConditionFalse, v1alpha1.ReasonPending) &&
			hasCond(c, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonPending)
	})
	poll(t, "the stage Job resumed", func(ctx context.Context) (bool, error) {
		err := e.client.Get(ctx, client.ObjectKeyFromObject(&job), &job)
		return !ptr.Deref(job.Spec.Suspend, true), err
	})
	e.waitEvent(t, cpj, v1alpha1.ReasonResumed, "the run goes on")
	// The same Job goes on to the end; suspend did not start a new run.
	e.succeedStage(t, &job, nil)
	next := e.waitJobs(t, cpj, 2)[1]
	e.succeedStage(t, &next, nil)
	got = e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if got.Status.Stages[0].State != v1alpha1.StageSucceeded {
		t.Errorf("after suspend and resume the first stage is %s, want Succeeded (not a new run)", got.Status.Stages[0].State)
	}

	// Created suspended: nothing runs until resumed.
	held := newCPJ(ns, "held", pruneStage("prune"))
	held.Spec.Suspend = true
	e.create(t, held)
	hkey := client.ObjectKeyFromObject(held)
	e.waitCPJ(t, hkey, "Suspended", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspended)
	})
	if n := len(e.jobs(t, held)); n != 0 {
		t.Fatalf("%d Jobs for a job created suspended, want 0", n)
	}
	setSuspend(t, e, hkey, false)
	j := e.waitJobs(t, held, 1)[0]
	if ptr.Deref(j.Spec.Suspend, false) {
		t.Errorf("Job %s created suspended after resume", j.Name)
	}
}

func setSuspend(t *testing.T, e *env, key client.ObjectKey, suspend bool) {
	t.Helper()
	poll(t, "updating spec.suspend", func(ctx context.Context) (bool, error) {
		var c v1alpha1.CompressionJob
		if err := e.client.Get(ctx, key, &c); err != nil {
			return false, err
		}
		c.Spec.Suspend = suspend
		err := e.client.Update(ctx, &c)
		return err == nil, client.IgnoreAlreadyExists(ignoreConflict(err))
	})
}

func ignoreConflict(err error) error {
	if apierrors.IsConflict(err) {
		return nil
	}
	return err
}

func updateSpec(t *testing.T, e *env, key client.ObjectKey, mutate func(*v1alpha1.CompressionJobSpec)) {
	t.Helper()
	poll(t, "updating the spec", func(ctx context.Context) (bool, error) {
		var c v1alpha1.CompressionJob
		if err := e.client.Get(ctx, key, &c); err != nil {
			return false, err
		}
		mutate(&c.Spec)
		err := e.client.Update(ctx, &c)
		return err == nil, ignoreConflict(err)
	})
}

// TestSpecChangeReusesStages finishes a run, changes the last stage, and
// checks the new run reuses the unchanged stages without Jobs and runs only
// the changed one.
func TestSpecChangeReusesStages(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "rerun", pruneStage("prune"), distillStage("recover"), quantizeStage("int8"))
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	var first []batchv1.Job
	for i := 0; i < 3; i++ {
		jobs := e.waitJobs(t, cpj, i+1)
		e.succeedStage(t, &jobs[i], nil)
		first = jobs
	}
	done := e.waitCPJ(t, key, "first run Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})

	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Stages[2].Quantize.Method = v1alpha1.QuantizeDynamic })
	second := e.waitCPJ(t, key, "second run reusing two stages", func(c *v1alpha1.CompressionJob) bool {
		return c.Generation == 2 && c.Status.ObservedGeneration == 2 &&
			stageState(c, 0) == v1alpha1.StageCached && stageState(c, 1) == v1alpha1.StageCached &&
			stageState(c, 2) == v1alpha1.StagePending && c.Status.Stages[2].JobName != "" &&
			hasCond(c, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonPending)
	})
	for i := 0; i < 2; i++ {
		if diff := cmp.Diff(done.Status.Stages[i].Output, second.Status.Stages[i].Output); diff != "" {
			t.Errorf("cached stage %d output (-first +second):\n%s", i, diff)
		}
		if second.Status.Stages[i].JobName != "" {
			t.Errorf("cached stage %d names Job %s; a cached stage runs no Job", i, second.Status.Stages[i].JobName)
		}
	}
	if second.Status.RunHash == done.Status.RunHash || !second.Status.StartTime.After(done.Status.StartTime.Time.Add(-time.Second)) {
		t.Errorf("run hash %s -> %s, start %v -> %v: want a new run", done.Status.RunHash, second.Status.RunHash, done.Status.StartTime, second.Status.StartTime)
	}
	// The old last-stage Job is gone (not in the new plan), the two reused
	// stages' Jobs stay, and a new Job runs the changed stage.
	var jobs []batchv1.Job
	poll(t, "the old int8 Job deleted and a new one created", func(context.Context) (bool, error) {
		jobs = e.jobs(t, cpj)
		return len(jobs) == 3 && jobs[2].Name != first[2].Name, nil
	})
	if jobs[0].UID != first[0].UID || jobs[1].UID != first[1].UID {
		t.Errorf("reused stages' Jobs were replaced")
	}
	task := taskOf(t, &jobs[2])
	if task.Input.URI != done.Status.Stages[1].Output.URI || task.Stage.Quantize.Method != v1alpha1.QuantizeDynamic {
		t.Errorf("new int8 task reads %s with method %s", task.Input.URI, task.Stage.Quantize.Method)
	}
	e.waitEvent(t, cpj, controllers.EventStageCached, "stage prune reuses")
	e.waitEvent(t, cpj, controllers.EventJobDeleted, first[2].Name)
	r := e.succeedStage(t, &jobs[2], nil)
	final := e.waitCPJ(t, key, "second run Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if diff := cmp.Diff(r.Output, final.Status.Output); diff != "" {
		t.Errorf("final output (-want +got):\n%s", diff)
	}
	if s := kstatusOf(t, final); s != kstatus.CurrentStatus {
		t.Errorf("kstatus %s, want Current", s)
	}
}

// TestSpecChangeRerunsUnpinnedStages is TestSpecChangeReusesStages with a
// dataset that is not pinned by digest: the keys are those of URIs, so the
// new run must not reuse the earlier outputs without a pod; the finished
// Job of the first stage is replaced (its runner reads the blobs again and
// finds the artifact if they did not change).
func TestSpecChangeRerunsUnpinnedStages(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "unpinned", pruneStage("prune"), quantizeStage("int8"))
	cpj.Spec.Dataset.SHA256 = ""
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	var first []batchv1.Job
	for i := 0; i < 2; i++ {
		first = e.waitJobs(t, cpj, i+1)
		e.succeedStage(t, &first[i], nil)
	}
	e.waitCPJ(t, key, "first run Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Stages[1].Quantize.Method = v1alpha1.QuantizeDynamic })
	second := e.waitCPJ(t, key, "second run running the first stage again", func(c *v1alpha1.CompressionJob) bool {
		return c.Status.ObservedGeneration == 2 && stageState(c, 0) != v1alpha1.StageCached &&
			c.Status.Stages[0].JobName == first[0].Name
	})
	if st := second.Status.Stages[0]; st.Output != nil {
		t.Errorf("stage prune kept output %v from the first run; an unpinned stage must be read again", st.Output)
	}
	e.waitEvent(t, cpj, controllers.EventJobDeleted, first[0].Name)
	poll(t, "the prune Job replaced", func(context.Context) (bool, error) {
		jobs := e.jobs(t, cpj)
		return len(jobs) >= 1 && jobs[0].Name == first[0].Name && jobs[0].UID != first[0].UID, nil
	})
}

// TestInvalidResult feeds termination messages that are not a result for
// the task and checks the stage fails with InvalidResult, not a crash.
func TestInvalidResult(t *testing.T) {
	e := sharedEnv(t)
	cases := []struct {
		name    string
		message func(pipeline.Task) string
		wantMsg string
	}{
		{"not JSON", func(pipeline.Task) string { return "Segmentation fault (core dumped)" }, "is not a result: result is not valid JSON"},
		{"empty", func(pipeline.Task) string { return "" }, "is not a result"},
		{"oversized", func(task pipeline.Task) string {
			r := resultFor(task, nil)
			r.Message = strings.Repeat("x", 5000)
			b, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}, "over the 4096-byte limit"},
		{"another task's key", func(task pipeline.Task) string {
			r := resultFor(task, nil)
			r.CacheKey = strings.Repeat("f", 64)
			return mustJSON(t, r)
		}, "result.cacheKey is"},
		{"someone else's blob", func(task pipeline.Task) string {
			r := resultFor(task, nil)
			r.Output.URI = "s3://elsewhere/model.onnx"
			return mustJSON(t, r)
		}, `result.output.uri is "s3://elsewhere/model.onnx"`},
		{"bad digest and metric", func(task pipeline.Task) string {
			r := resultFor(task, map[string]string{"accuracy": "high"})
			r.Output.Digest = "md5:abc"
			return mustJSON(t, r)
		}, "result.output.digest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.namespace(t)
			cpj := newCPJ(ns, "liar", pruneStage("prune"))
			e.create(t, cpj)
			job := e.waitJobs(t, cpj, 1)[0]
			pod := e.startPod(t, &job, "node-a")
			e.finishPod(t, pod, 0, tc.message(taskOf(t, &job)))
			e.completeJob(t, &job)
			got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "InvalidResult", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidResult)
			})
			s := got.Status.Stages[0]
			if s.State != v1alpha1.StageFailed || s.Reason != v1alpha1.ReasonInvalidResult || !strings.Contains(s.Message, tc.wantMsg) || s.Output != nil {
				t.Errorf("stage %+v: want Failed/InvalidResult mentioning %q and no output", s, tc.wantMsg)
			}
			if got.Status.Output != nil {
				t.Errorf("status.output %+v set from an invalid result", got.Status.Output)
			}
		})
	}
}

func mustJSON(t *testing.T, r pipeline.Result) string {
	t.Helper()
	b, err := r.TerminationMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMissingSecret names a Secret that does not exist: the run stalls
// with SecretNotFound and an event, no Job is created, and once the Secret
// appears the Job gets one SecretKeyRef per usable key.
func TestMissingSecret(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "creds", pruneStage("prune"))
	cpj.Spec.Storage = &v1alpha1.StorageSpec{SecretRef: &corev1.LocalObjectReference{Name: "s3-creds"}, ServiceAccountName: "workload-identity"}
	e.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload-identity"}})
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	got := e.waitCPJ(t, key, "SecretNotFound", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonSecretNotFound)
	})
	if msg := cond(got, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "Secret "+ns+"/s3-creds") {
		t.Errorf("Ready message %q does not name the Secret", msg)
	}
	e.waitEvent(t, cpj, v1alpha1.ReasonSecretNotFound, "Secret "+ns+"/s3-creds")
	if n := len(e.jobs(t, cpj)); n != 0 {
		t.Fatalf("%d Jobs created without their Secret", n)
	}

	e.create(t, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "s3-creds"},
		Data: map[string][]byte{
			"AWS_SECRET_ACCESS_KEY": []byte("s"), "AWS_ACCESS_KEY_ID": []byte("k"),
			"0-starts-with-a-digit": []byte("x"), "KOMPRESS_TASK": []byte("{}"),
		},
	})
	job := e.waitJobs(t, cpj, 1)[0]
	var secretEnv []corev1.EnvVar
	for _, env := range job.Spec.Template.Spec.Containers[0].Env {
		if env.ValueFrom != nil && env.ValueFrom.SecretKeyRef != nil {
			secretEnv = append(secretEnv, env)
		}
	}
	ref := func(k string) corev1.EnvVar {
		return corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "s3-creds"}, Key: k}}}
	}
	if diff := cmp.Diff([]corev1.EnvVar{ref("AWS_ACCESS_KEY_ID"), ref("AWS_SECRET_ACCESS_KEY")}, secretEnv); diff != "" {
		t.Errorf("SecretKeyRef env (-want +got):\n%s", diff)
	}
	if sa := job.Spec.Template.Spec.ServiceAccountName; sa != "workload-identity" {
		t.Errorf("serviceAccountName %q, want spec.storage.serviceAccountName", sa)
	}
	e.waitCPJ(t, key, "no longer stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonPending)
	})
}

// TestQualityGateMissed ends a run whose final metrics miss a gate: Stalled
// QualityGateFailed naming the gate, with status.output still set.
func TestQualityGateMissed(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "gated", quantizeStage("int8"))
	cpj.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01", MinTop1Agreement: "0.99", MaxBytes: ptr.To[int64](1 << 20)}
	e.create(t, cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	r := e.succeedStage(t, &job, map[string]string{
		pipeline.MetricAccuracyDrop: "0.025", pipeline.MetricTop1Agreement: "0.995", pipeline.MetricBytes: "9000",
	})
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "QualityGateFailed", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonQualityGateFailed)
	})
	msg := cond(got, v1alpha1.ConditionStalled).Message
	if !strings.Contains(msg, "maxAccuracyDrop: accuracyDrop 0.025 is above 0.01") || strings.Contains(msg, "minTop1Agreement") || strings.Contains(msg, "maxBytes") {
		t.Errorf("Stalled message %q: want the missed maxAccuracyDrop gate only", msg)
	}
	if diff := cmp.Diff(r.Output, got.Status.Output); diff != "" {
		t.Errorf("status.output must be kept when a gate fails (-want +got):\n%s", diff)
	}
	if got.Status.Stages[0].State != v1alpha1.StageSucceeded || got.Status.Progress != "1/1" {
		t.Errorf("stage %s, progress %s", got.Status.Stages[0].State, got.Status.Progress)
	}
	if s := kstatusOf(t, got); s != kstatus.FailedStatus {
		t.Errorf("kstatus %s, want Failed", s)
	}
	e.waitEvent(t, cpj, v1alpha1.ReasonQualityGateFailed, "maxAccuracyDrop")
}

// TestKueueQueue hands Jobs to Kueue: created suspended with the queue
// label, AwaitingAdmission until "Kueue" unsuspends it, never unsuspended
// by the controller.
func TestKueueQueue(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "queued", pruneStage("prune"))
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{QueueName: "team-a"}
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	if job.Labels[controllers.LabelQueueName] != "team-a" || !ptr.Deref(job.Spec.Suspend, false) {
		t.Fatalf("Job labels %v, suspend %v: want the queue label and suspend=true", job.Labels, job.Spec.Suspend)
	}
	got := e.waitCPJ(t, key, "AwaitingAdmission", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAdmission)
	})
	if !strings.Contains(cond(got, v1alpha1.ConditionReady).Message, "queue team-a") {
		t.Errorf("message %q does not name the queue", cond(got, v1alpha1.ConditionReady).Message)
	}
	time.Sleep(300 * time.Millisecond)
	if err := e.client.Get(context.Background(), client.ObjectKeyFromObject(&job), &job); err != nil {
		t.Fatal(err)
	}
	if !ptr.Deref(job.Spec.Suspend, false) {
		t.Fatalf("the controller unsuspended a Job that Kueue owns")
	}

	// Suspending the CompressionJob deletes the queued Job (Kueue would
	// admit it again); resuming creates it again, still Kueue's to start.
	setSuspend(t, e, key, true)
	e.waitCPJ(t, key, "Suspended", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspended) && stageState(c, 0) == v1alpha1.StageSuspended
	})
	e.waitJobs(t, cpj, 0)
	setSuspend(t, e, key, false)
	job = e.waitJobs(t, cpj, 1)[0]
	if !ptr.Deref(job.Spec.Suspend, false) {
		t.Fatalf("Job %s re-created unsuspended: Kueue owns suspend", job.Name)
	}
	e.waitCPJ(t, key, "AwaitingAdmission again", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAdmission)
	})
	// Kueue admits it.
	patch := client.MergeFrom(job.DeepCopy())
	job.Spec.Suspend = ptr.To(false)
	if err := e.client.Patch(context.Background(), &job, patch); err != nil {
		t.Fatal(err)
	}
	e.waitCPJ(t, key, "admitted", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonPending)
	})
	e.succeedStage(t, &job, nil)
	e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
}

// TestQueueNameFix corrects the queue of a Job that waits for Kueue: the
// new run replaces the queued Job with one in the new queue (adopting it
// would leave it waiting on the wrong queue for good).
func TestQueueNameFix(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "requeued", pruneStage("prune"))
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{QueueName: "no-such-queue"}
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	queued := e.waitJobs(t, cpj, 1)[0]
	e.waitCPJ(t, key, "AwaitingAdmission", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAdmission)
	})
	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Scheduling.QueueName = "team-a" })
	moved := e.waitReplaced(t, cpj, &queued, "the queued Job replaced by one in queue team-a")
	if moved.Labels[controllers.LabelQueueName] != "team-a" || !ptr.Deref(moved.Spec.Suspend, false) {
		t.Errorf("replacement Job labels %v, suspend %v: want queue team-a, created suspended", moved.Labels, moved.Spec.Suspend)
	}
	got := e.waitCPJ(t, key, "AwaitingAdmission in team-a", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonAwaitingAdmission) &&
			strings.Contains(cond(c, v1alpha1.ConditionReady).Message, "queue team-a")
	})
	if got.Status.Stages[0].JobName != moved.Name {
		t.Errorf("stage reports Job %s, want %s", got.Status.Stages[0].JobName, moved.Name)
	}
}

// TestRunDeadline lets a run outlive spec.activeDeadlineSeconds: the run
// stalls with DeadlineExceeded and its running Job is deleted, also when the
// deadline was added later and the new run adopted the earlier run's Job.
func TestRunDeadline(t *testing.T) {
	e := sharedEnv(t)
	for _, later := range []bool{false, true} {
		t.Run(fmt.Sprintf("set later %t", later), func(t *testing.T) {
			ns := e.namespace(t)
			cpj := newCPJ(ns, "slow", pruneStage("prune"))
			if !later {
				cpj.Spec.ActiveDeadlineSeconds = ptr.To[int64](2)
			}
			e.create(t, cpj)
			key := client.ObjectKeyFromObject(cpj)
			job := e.waitJobs(t, cpj, 1)[0]
			pod := e.startPod(t, &job, "node-a")
			if err := controlplaneSetRunning(e, pod); err != nil {
				t.Fatal(err)
			}
			if later {
				e.waitCPJ(t, key, "running", func(c *v1alpha1.CompressionJob) bool { return stageState(c, 0) == v1alpha1.StageRunning })
				updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.ActiveDeadlineSeconds = ptr.To[int64](2) })
			}
			got := e.waitCPJ(t, key, "DeadlineExceeded", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonDeadlineExceeded)
			})
			if !strings.Contains(cond(got, v1alpha1.ConditionStalled).Message, "spec.activeDeadlineSeconds (2s)") {
				t.Errorf("message %q", cond(got, v1alpha1.ConditionStalled).Message)
			}
			e.waitJobs(t, cpj, 0)
			e.waitEvent(t, cpj, controllers.EventJobDeleted, "stage prune failed (DeadlineExceeded)")
		})
	}
}

// TestUnschedulablePod reports a pending pod the scheduler rejected as
// Unschedulable with the scheduler's message, never as Running.
func TestUnschedulablePod(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "nowhere", pruneStage("prune"))
	e.create(t, cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	pod := e.startPod(t, &job, "")
	msg := "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
	pod.Status.Phase = corev1.PodPending
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
		Reason: corev1.PodReasonUnschedulable, Message: msg, LastTransitionTime: metav1.Now()}}
	if err := e.client.Status().Update(context.Background(), pod); err != nil {
		t.Fatal(err)
	}
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Unschedulable", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable)
	})
	if !strings.Contains(cond(got, v1alpha1.ConditionReady).Message, msg) || got.Status.Stages[0].State != v1alpha1.StagePending {
		t.Errorf("Ready message %q, stage %s", cond(got, v1alpha1.ConditionReady).Message, got.Status.Stages[0].State)
	}
	e.waitEvent(t, cpj, v1alpha1.ReasonUnschedulable, msg)
}

// TestNewRunRetriesFailedStage fails a stage, then changes the spec in a way
// that keeps the stage's cache key: the new run replaces the failed Job of
// the same name and runs the stage again.
func TestNewRunRetriesFailedStage(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "retry", pruneStage("prune"))
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	failed := e.waitJobs(t, cpj, 1)[0]
	e.failJob(t, &failed, batchv1.JobReasonBackoffLimitExceeded, "backoff limit", 3)
	e.waitCPJ(t, key, "Stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonBackoffLimitExceeded)
	})

	// More retries: placement is not part of the cache key, so the Job
	// keeps its name.
	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Stages[0].BackoffLimit = ptr.To[int32](6) })
	retry := e.waitReplaced(t, cpj, &failed, "a new Job replacing the failed one")
	if retry.Name != failed.Name || *retry.Spec.BackoffLimit != 6 {
		t.Errorf("replacement Job %s with backoffLimit %d, want %s with 6", retry.Name, *retry.Spec.BackoffLimit, failed.Name)
	}
	e.waitCPJ(t, key, "no longer stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonPending) && c.Status.CompletionTime == nil
	})
	e.succeedStage(t, &retry, nil)
	e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded) && stageState(c, 0) == v1alpha1.StageSucceeded
	})
}

// TestSchedulingFixReplacesPendingJob moves an unschedulable stage to
// another pool: the waiting Job is replaced by one with the new selector,
// while a spec change that leaves the pod as it was keeps the Job.
func TestSchedulingFixReplacesPendingJob(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "moved", pruneStage("prune"))
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "nowhere"}}
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	stuck := e.waitJobs(t, cpj, 1)[0]

	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) {
		s.Acceptance = &v1alpha1.AcceptanceSpec{MaxBytes: ptr.To[int64](1 << 30)}
	})
	e.waitCPJ(t, key, "second generation observed", func(c *v1alpha1.CompressionJob) bool { return c.Status.ObservedGeneration == 2 })
	if jobs := e.jobs(t, cpj); len(jobs) != 1 || jobs[0].UID != stuck.UID {
		t.Fatalf("a change that keeps the pod replaced its Job")
	}

	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Scheduling.NodeSelector["pool"] = "edge" })
	moved := e.waitReplaced(t, cpj, &stuck, "the Job replaced with the new node selector")
	if got := moved.Spec.Template.Spec.NodeSelector["pool"]; got != "edge" {
		t.Errorf("replacement Job's pool %q, want edge", got)
	}
	e.waitEvent(t, cpj, controllers.EventJobDeleted, "the current run replaces it")
}

// TestFinishedJobDeletedByTTL removes a finished stage's Job (as
// ttlSecondsAfterFinished would): the stage's result stays in status and
// the stage does not run again.
func TestFinishedJobDeletedByTTL(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "ttl", pruneStage("prune"), quantizeStage("int8"))
	cpj.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	first := e.waitJobs(t, cpj, 1)[0]
	r := e.succeedStage(t, &first, nil)
	second := e.waitJobs(t, cpj, 2)[1]
	if err := e.client.Delete(context.Background(), &first, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	poll(t, "the first Job gone", func(context.Context) (bool, error) {
		jobs := e.jobs(t, cpj)
		return len(jobs) == 1 && jobs[0].UID == second.UID, nil
	})
	e.succeedStage(t, &second, nil)
	got := e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if diff := cmp.Diff(r.Output, got.Status.Stages[0].Output); diff != "" || got.Status.Stages[0].State != v1alpha1.StageSucceeded {
		t.Errorf("first stage %s after its Job was deleted; output (-want +got):\n%s", got.Status.Stages[0].State, diff)
	}
	if jobs := e.jobs(t, cpj); len(jobs) != 1 {
		t.Errorf("%d Jobs: the deleted stage Job was created again", len(jobs))
	}
}

// TestJobDeletedBeforeResultRead plays ttlSecondsAfterFinished: 0, whose
// foreground deletion can take a completed Job's pods before the controller
// reads their result. The stage must not fail with InvalidResult: it runs
// again once the Job is gone (the runner then reuses its result.json).
func TestJobDeletedBeforeResultRead(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	ns := e.namespace(t)
	cpj := newCPJ(ns, "ttl0", pruneStage("prune"))
	cpj.Spec.TTLSecondsAfterFinished = ptr.To[int32](0)
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	first := e.waitJobs(t, cpj, 1)[0]
	// No garbage collector runs here: the foreground deletion holds the Job,
	// podless, until its finalizer is removed below.
	if err := e.client.Delete(ctx, &first, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatal(err)
	}
	e.completeJob(t, &first)
	got := e.waitCPJ(t, key, "the stage waiting to run again", func(c *v1alpha1.CompressionJob) bool {
		return stageState(c, 0) == v1alpha1.StagePending && strings.Contains(c.Status.Stages[0].Message, "was deleted before its result was read")
	})
	if c := cond(got, v1alpha1.ConditionStalled); c == nil || c.Status != metav1.ConditionFalse {
		t.Fatalf("Stalled %+v: a Job deleted by TTL must not stall the run", c)
	}
	poll(t, "the Job's finalizer removed", func(ctx context.Context) (bool, error) {
		var j batchv1.Job
		if err := e.client.Get(ctx, client.ObjectKeyFromObject(&first), &j); err != nil {
			return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
		}
		if j.UID != first.UID {
			return true, nil // gone, and its successor (same name) already created
		}
		j.Finalizers = nil
		return false, ignoreConflict(e.client.Update(ctx, &j))
	})
	again := e.waitReplaced(t, cpj, &first, "the stage Job created again")
	r := resultFor(taskOf(t, &again), nil)
	r.Cached = true // the runner found the result.json it wrote the first time
	pod := e.startPod(t, &again, "node-a")
	e.finishPod(t, pod, 0, termMessage(t, r))
	e.completeJob(t, &again)
	done := e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if diff := cmp.Diff(r.Output, done.Status.Output); diff != "" || done.Status.Stages[0].State != v1alpha1.StageCached {
		t.Errorf("stage %s; output (-want +got):\n%s", done.Status.Stages[0].State, diff)
	}
}

// TestRunnerUpgrade restarts the manager with another --runner-version: a
// finished run stays as it is (no stage runs again until the spec changes),
// while a run in progress replaces its running Job with one keyed by the
// new version.
func TestRunnerUpgrade(t *testing.T) {
	if testing.Short() {
		t.Skip("starts its own control plane; skipped with -short")
	}
	e, err := startEnv(controlplane.Options{CRDDirectoryPaths: []string{crdDir()}}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
	})
	ns := e.namespace(t)
	done := newCPJ(ns, "done", quantizeStage("int8"))
	busy := newCPJ(ns, "busy", pruneStage("prune"), quantizeStage("int8"))
	e.create(t, done)
	e.create(t, busy)
	j := e.waitJobs(t, done, 1)[0]
	e.succeedStage(t, &j, nil)
	before := e.waitCPJ(t, client.ObjectKeyFromObject(done), "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	j = e.waitJobs(t, busy, 1)[0]
	e.succeedStage(t, &j, nil)
	old := e.waitJobs(t, busy, 2)[1]
	e.waitCPJ(t, client.ObjectKeyFromObject(busy), "second stage pending", func(c *v1alpha1.CompressionJob) bool {
		return stageState(c, 1) == v1alpha1.StagePending && c.Status.Stages[1].JobName == old.Name
	})

	if err := e.mgr.stop(); err != nil {
		t.Fatal(err)
	}
	next := testDefaults
	next.RunnerVersion = "v-next"
	if e.mgr, err = startManager(e.cp, next, time.Second); err != nil {
		t.Fatal(err)
	}

	var jobs []batchv1.Job
	poll(t, "the running Job replaced by one of the new runner version", func(context.Context) (bool, error) {
		jobs = e.jobs(t, busy)
		return len(jobs) == 2 && jobs[1].UID != old.UID, nil
	})
	if task := taskOf(t, &jobs[1]); task.RunnerVersion != "v-next" || jobs[1].Name == old.Name {
		t.Errorf("new Job %s carries runner version %s", jobs[1].Name, task.RunnerVersion)
	}
	got := e.waitCPJ(t, client.ObjectKeyFromObject(busy), "first stage kept", func(c *v1alpha1.CompressionJob) bool {
		return c.Status.Stages[1].JobName == jobs[1].Name
	})
	if got.Status.Stages[0].State != v1alpha1.StageSucceeded || got.Status.Stages[0].JobName != jobs[0].Name {
		t.Errorf("finished first stage became %s (Job %s)", got.Status.Stages[0].State, got.Status.Stages[0].JobName)
	}
	time.Sleep(500 * time.Millisecond)
	after := e.waitCPJ(t, client.ObjectKeyFromObject(done), "still Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if diff := cmp.Diff(before.Status, after.Status); diff != "" {
		t.Errorf("a finished run changed after the runner upgrade (-before +after):\n%s", diff)
	}
	if n := len(e.jobs(t, done)); n != 1 {
		t.Errorf("%d Jobs for the finished run, want 1", n)
	}
}
