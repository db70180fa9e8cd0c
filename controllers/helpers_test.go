package controllers_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/test/controlplane"
)

const (
	waitTimeout = 20 * time.Second
	sourceSHA   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	datasetSHA  = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func pruneStage(name string) v1alpha1.Stage {
	return v1alpha1.Stage{Name: name, StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
		Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}
}

func distillStage(name string) v1alpha1.Stage {
	return v1alpha1.Stage{Name: name, StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{Epochs: 1}}}
}

func quantizeStage(name string) v1alpha1.Stage {
	return v1alpha1.Stage{Name: name, StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize,
		Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic}}}
}

func newCPJ(ns, name string, stages ...v1alpha1.Stage) *v1alpha1.CompressionJob {
	return &v1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.CompressionJobSpec{
			Source:  v1alpha1.ModelSource{URI: "s3://models/mnist-8.onnx", SHA256: sourceSHA},
			Output:  v1alpha1.OutputSpec{URI: "s3://compressed/" + name},
			Dataset: &v1alpha1.DatasetSpec{URI: "s3://data/mnist.npz", SHA256: datasetSHA},
			Stages:  stages,
		},
	}
}

func (e *env) create(t testing.TB, obj client.Object) {
	t.Helper()
	if err := e.client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// poll calls cond until it holds or the wait times out.
func poll(t testing.TB, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitCPJ waits until the CompressionJob satisfies ok and returns it; on
// timeout the failure shows its status.
func (e *env) waitCPJ(t testing.TB, key client.ObjectKey, what string, ok func(*v1alpha1.CompressionJob) bool) *v1alpha1.CompressionJob {
	t.Helper()
	cpj := &v1alpha1.CompressionJob{}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := e.client.Get(ctx, key, cpj); err != nil {
			return false, err
		}
		return ok(cpj), nil
	})
	if err != nil {
		st, _ := yaml.Marshal(cpj.Status)
		t.Fatalf("waiting for CompressionJob %s: %s: %v\nstatus:\n%s", key, what, err, st)
	}
	return cpj
}

func cond(cpj *v1alpha1.CompressionJob, typ string) *metav1.Condition {
	return meta.FindStatusCondition(cpj.Status.Conditions, typ)
}

// hasCond reports a current condition (observedGeneration matching).
func hasCond(cpj *v1alpha1.CompressionJob, typ string, status metav1.ConditionStatus, reason string) bool {
	c := cond(cpj, typ)
	return c != nil && c.Status == status && c.Reason == reason && c.ObservedGeneration == cpj.Generation &&
		cpj.Status.ObservedGeneration == cpj.Generation
}

func stageState(cpj *v1alpha1.CompressionJob, i int) v1alpha1.StageState {
	if i >= len(cpj.Status.Stages) {
		return ""
	}
	return cpj.Status.Stages[i].State
}

// jobs lists the CompressionJob's stage Jobs, by stage index.
func (e *env) jobs(t testing.TB, cpj *v1alpha1.CompressionJob) []batchv1.Job {
	t.Helper()
	var list batchv1.JobList
	if err := e.client.List(context.Background(), &list, client.InNamespace(cpj.Namespace),
		client.MatchingLabels{controllers.LabelJob: cpj.Name}); err != nil {
		t.Fatal(err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, _ := strconv.Atoi(list.Items[i].Labels[controllers.LabelStageIndex])
		b, _ := strconv.Atoi(list.Items[j].Labels[controllers.LabelStageIndex])
		return a < b
	})
	return list.Items
}

// waitJobs waits until the CompressionJob has exactly n stage Jobs.
func (e *env) waitJobs(t testing.TB, cpj *v1alpha1.CompressionJob, n int) []batchv1.Job {
	t.Helper()
	var jobs []batchv1.Job
	poll(t, fmt.Sprintf("%d stage Jobs of %s", n, cpj.Name), func(context.Context) (bool, error) {
		jobs = e.jobs(t, cpj)
		return len(jobs) == n, nil
	})
	return jobs
}

// waitReplaced waits until the CompressionJob's one stage Job is another
// than old (same name or not) and returns it.
func (e *env) waitReplaced(t testing.TB, cpj *v1alpha1.CompressionJob, old *batchv1.Job, what string) batchv1.Job {
	t.Helper()
	var job batchv1.Job
	poll(t, what, func(context.Context) (bool, error) {
		jobs := e.jobs(t, cpj)
		if len(jobs) != 1 || jobs[0].UID == old.UID {
			return false, nil
		}
		job = jobs[0]
		return true, nil
	})
	return job
}

// taskOf decodes the task a stage Job carries.
func taskOf(t testing.TB, job *batchv1.Job) pipeline.Task {
	t.Helper()
	for _, env := range job.Spec.Template.Spec.Containers[0].Env {
		if env.Name == pipeline.TaskEnv {
			task, err := pipeline.DecodeTask([]byte(env.Value))
			if err != nil {
				t.Fatalf("Job %s: %s does not decode: %v", job.Name, pipeline.TaskEnv, err)
			}
			return task
		}
	}
	t.Fatalf("Job %s has no %s", job.Name, pipeline.TaskEnv)
	return pipeline.Task{}
}

// startPod creates the pod the Job controller would, already bound to node
// (there is no Job controller nor scheduler in the shared environment).
func (e *env) startPod(t testing.TB, job *batchv1.Job, node string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    job.Namespace,
			GenerateName: job.Name + "-",
			Labels:       map[string]string{"batch.kubernetes.io/job-name": job.Name, "batch.kubernetes.io/controller-uid": string(job.UID)},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: job.Name, UID: job.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		Spec: *job.Spec.Template.Spec.DeepCopy(),
	}
	for k, v := range job.Spec.Template.Labels {
		pod.Labels[k] = v
	}
	pod.Spec.NodeName = node
	e.create(t, pod)
	return pod
}

// finishPod plays the kubelet: the runner container ends with exitCode and
// the termination message msg.
func (e *env) finishPod(t testing.TB, pod *corev1.Pod, exitCode int32, msg string) {
	t.Helper()
	if err := controlplane.SetPodTerminated(context.Background(), e.client, pod, exitCode, msg); err != nil {
		t.Fatal(err)
	}
}

// completeJob plays the Job controller: the status a succeeded Job has
// (SuccessCriteriaMet then Complete, with start and completion times).
func (e *env) completeJob(t testing.TB, job *batchv1.Job) {
	t.Helper()
	now := metav1.Now()
	e.setJobStatus(t, job, func(st *batchv1.JobStatus) {
		st.StartTime, st.CompletionTime, st.Active, st.Succeeded = &now, &now, 0, 1
		st.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: batchv1.JobReasonCompletionsReached, LastTransitionTime: now, LastProbeTime: now},
		}
	})
}

// failJob plays the Job controller: FailureTarget then Failed with reason.
func (e *env) failJob(t testing.TB, job *batchv1.Job, reason, message string, failedPods int32) {
	t.Helper()
	now := metav1.Now()
	e.setJobStatus(t, job, func(st *batchv1.JobStatus) {
		st.StartTime, st.Active, st.Failed = &now, 0, failedPods
		st.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now, LastProbeTime: now},
			{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: now, LastProbeTime: now},
		}
	})
}

func (e *env) setJobStatus(t testing.TB, job *batchv1.Job, set func(*batchv1.JobStatus)) {
	t.Helper()
	ctx := context.Background()
	if err := e.client.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
		t.Fatal(err)
	}
	set(&job.Status)
	if err := e.client.Status().Update(ctx, job); err != nil {
		t.Fatalf("setting the status of Job %s: %v", job.Name, err)
	}
}

// resultFor is the result a runner reports for task.
func resultFor(task pipeline.Task, metrics map[string]string) pipeline.Result {
	sum := sha256.Sum256([]byte(task.OutputURI))
	return pipeline.Result{
		Version: pipeline.ContractVersion, Stage: task.Stage.Name, CacheKey: task.CacheKey,
		Input: task.Input, DurationSeconds: "1.5",
		Output: &v1alpha1.Artifact{URI: task.OutputURI, Digest: "sha256:" + hex.EncodeToString(sum[:]), SizeBytes: 9000 - int64(task.Index)*1000, Metrics: metrics},
	}
}

func termMessage(t testing.TB, r pipeline.Result) string {
	t.Helper()
	b, err := r.TerminationMessage()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// succeedStage runs the stage's Job to success: a pod that ends with the
// result in its termination message, then the Job complete.
func (e *env) succeedStage(t testing.TB, job *batchv1.Job, metrics map[string]string) pipeline.Result {
	t.Helper()
	r := resultFor(taskOf(t, job), metrics)
	pod := e.startPod(t, job, "node-a")
	e.finishPod(t, pod, 0, termMessage(t, r))
	e.completeJob(t, job)
	return r
}

// kstatusOf computes the kstatus of the object as kubectl/Flux/Argo would.
func kstatusOf(t testing.TB, cpj *v1alpha1.CompressionJob) kstatus.Status {
	t.Helper()
	obj, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(cpj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
	if err != nil {
		t.Fatal(err)
	}
	return res.Status
}

// events lists the events.k8s.io events regarding the CompressionJob.
func (e *env) events(t testing.TB, cpj *v1alpha1.CompressionJob) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := e.client.List(context.Background(), &list, client.InNamespace(cpj.Namespace)); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, ev := range list.Items {
		if ev.Regarding.Name == cpj.Name && ev.Regarding.Kind == "CompressionJob" {
			out = append(out, ev)
		}
	}
	return out
}

// waitEvent waits for an event with reason whose note contains text.
func (e *env) waitEvent(t testing.TB, cpj *v1alpha1.CompressionJob, reason, text string) eventsv1.Event {
	t.Helper()
	var found eventsv1.Event
	defer func() {
		if t.Failed() {
			for _, ev := range e.events(t, cpj) {
				t.Logf("event %s %s: %s", ev.Type, ev.Reason, ev.Note)
			}
		}
	}()
	poll(t, fmt.Sprintf("event %s %q of %s", reason, text, cpj.Name), func(context.Context) (bool, error) {
		for _, ev := range e.events(t, cpj) {
			if ev.Reason == reason && strings.Contains(ev.Note, text) {
				found = ev
				return true, nil
			}
		}
		return false, nil
	})
	return found
}

func controlplaneSetRunning(e *env, pod *corev1.Pod) error {
	return controlplane.SetPodRunning(context.Background(), e.client, pod)
}
