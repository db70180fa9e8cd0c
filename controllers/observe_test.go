package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

var t0 = metav1.NewTime(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))

func testJob(mutate func(*batchv1.Job)) *batchv1.Job {
	j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "mnist-0-prune-abcdef", Namespace: "ml", UID: "job-uid", CreationTimestamp: t0,
		Labels: map[string]string{}}}
	if mutate != nil {
		mutate(j)
	}
	return j
}

type podOpt func(*corev1.Pod)

func testPod(name string, created time.Duration, opts ...podOpt) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ml", CreationTimestamp: metav1.NewTime(t0.Add(created)),
		OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "mnist-0-prune-abcdef", UID: "job-uid", Controller: ptr.To(true)}}}}
	for _, o := range opts {
		o(&p)
	}
	return p
}

func phase(ph corev1.PodPhase) podOpt { return func(p *corev1.Pod) { p.Status.Phase = ph } }
func onNode(n string) podOpt          { return func(p *corev1.Pod) { p.Spec.NodeName = n } }
func index(i string) podOpt {
	return func(p *corev1.Pod) { p.Annotations = map[string]string{batchv1.JobCompletionIndexAnnotation: i} }
}
func ownedBy(uid types.UID) podOpt {
	return func(p *corev1.Pod) { p.OwnerReferences[0].UID = uid }
}
func beingDeleted(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0.Add(time.Hour))) }

// deleting returns a copy of the Job as TTL's foreground deletion leaves it.
func deleting(j *batchv1.Job) *batchv1.Job {
	j = j.DeepCopy()
	j.DeletionTimestamp = ptr.To(metav1.NewTime(t0.Add(time.Hour)))
	return j
}

func terminated(code int32, msg string) podOpt {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "runner",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg}}}}
	}
}

func TestObserveActive(t *testing.T) {
	base := v1alpha1.StageStatus{Name: "prune", CacheKey: "k", State: v1alpha1.StagePending}
	unschedulable := func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: "0/2 nodes are available: 2 Insufficient memory."}}
	}
	pullErr := func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "runner", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: "manifest unknown"}}}}
	}
	cases := []struct {
		name         string
		job          *batchv1.Job
		pods         []corev1.Pod
		cpjSuspended bool
		want         v1alpha1.StageStatus
	}{
		{"no pod yet", testJob(nil), nil, false, v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending",
			Message: "Job mnist-0-prune-abcdef waits for its pod to start"}},
		{"suspended by the user", testJob(func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) }), nil, true,
			v1alpha1.StageStatus{State: v1alpha1.StageSuspended, Reason: "Suspended", Message: "Job mnist-0-prune-abcdef is suspended"}},
		{"waiting for Kueue", testJob(func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true); j.Labels[LabelQueueName] = "q1" }), nil, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "AwaitingAdmission", Message: "Job mnist-0-prune-abcdef waits for Kueue to admit it from queue q1"}},
		{"suspended, being resumed", testJob(func(j *batchv1.Job) { j.Spec.Suspend = ptr.To(true) }), nil, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending", Message: "Job mnist-0-prune-abcdef is being resumed"}},
		{"running", testJob(func(j *batchv1.Job) { j.Status.Active = 1; j.Status.Failed = 1 }),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed)), testPod("p2", time.Second, phase(corev1.PodRunning), onNode("edge-0"))}, false,
			v1alpha1.StageStatus{State: v1alpha1.StageRunning, Reason: "Running", Message: "pod p2 is running on node edge-0", Attempts: 2}},
		{"unschedulable is never running", testJob(func(j *batchv1.Job) { j.Status.Active = 1 }),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodPending), unschedulable)}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Unschedulable", Attempts: 1,
				Message: "pod p1 cannot be scheduled: 0/2 nodes are available: 2 Insufficient memory."}},
		{"an index that cannot be placed holds up those running", testJob(func(j *batchv1.Job) {
			j.Status.Active = 2
			j.Spec.CompletionMode, j.Spec.Completions = ptr.To(batchv1.IndexedCompletion), ptr.To[int32](2)
		}), []corev1.Pod{testPod("p0", 0, phase(corev1.PodRunning), onNode("n1"), index("0")), testPod("p1", 0, phase(corev1.PodPending), unschedulable, index("1"))}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Unschedulable", Attempts: 2,
				Message: "pod p1 of index 1 of 2 cannot be scheduled: 0/2 nodes are available: 2 Insufficient memory; the indices running wait for it (all 2 run at once: give the job a Kueue queue, or fewer shards or layers)"}},
		{"image cannot be pulled", testJob(func(j *batchv1.Job) { j.Status.Active = 1 }),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodPending), onNode("n1"), pullErr)}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "ErrImagePull", Attempts: 1, Message: "pod p1: manifest unknown"}},
		{"bound and starting", testJob(func(j *batchv1.Job) { j.Status.Active = 1 }),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodPending), onNode("n1"))}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending", Attempts: 1, Message: "pod p1 is starting on node n1"}},
		{"a pod being deleted is not running", testJob(func(j *batchv1.Job) { j.Status.Active = 1 }),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodRunning), onNode("n1"), beingDeleted)}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending", Attempts: 1, Message: "Job mnist-0-prune-abcdef waits for its pod to start"}},
		{"another Job's pod is ignored", testJob(nil),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodRunning), onNode("n1"), ownedBy("other"))}, false,
			v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending", Message: "Job mnist-0-prune-abcdef waits for its pod to start"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := observeActive(base, tc.job, tc.pods, tc.cpjSuspended)
			want := tc.want
			want.Name, want.CacheKey, want.JobName, want.StartTime = "prune", "k", tc.job.Name, &t0
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("observeActive (-want +got):\n%s", diff)
			}
		})
	}
}

func TestObserveFinished(t *testing.T) {
	spec := &v1alpha1.CompressionJobSpec{Source: v1alpha1.ModelSource{URI: "s3://m/src.onnx"}, Output: v1alpha1.OutputSpec{URI: "s3://m/out"},
		Stages: []v1alpha1.Stage{{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}}}
	task, err := pipeline.NewTask("ml/mnist", spec, 0, pipeline.SourceRef(spec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	out := &v1alpha1.Artifact{URI: task.OutputURI, Digest: "sha256:" + strings.Repeat("d", 64), SizeBytes: 100, Metrics: map[string]string{"sparsity": "0.5"}}
	good, err := pipeline.Result{Version: pipeline.ContractVersion, Stage: "prune", CacheKey: task.CacheKey, Output: out}.TerminationMessage()
	if err != nil {
		t.Fatal(err)
	}
	t1 := metav1.NewTime(t0.Add(time.Minute))
	complete := testJob(func(j *batchv1.Job) {
		j.Status.Succeeded, j.Status.CompletionTime = 1, &t1
		j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: t1}}
	})
	failed := func(reason, msg string, pods int32) *batchv1.Job {
		return testJob(func(j *batchv1.Job) {
			j.Status.Failed = pods
			j.Status.Conditions = []batchv1.JobCondition{{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: reason, Message: msg, LastTransitionTime: t1}}
		})
	}
	cases := []struct {
		name string
		job  *batchv1.Job
		pods []corev1.Pod
		want v1alpha1.StageStatus
	}{
		{"succeeded", complete, []corev1.Pod{testPod("p1", 0, phase(corev1.PodSucceeded), terminated(0, string(good)))},
			v1alpha1.StageStatus{State: v1alpha1.StageSucceeded, Reason: "Succeeded", Message: "wrote " + task.OutputURI, Output: out, Attempts: 1}},
		{"succeeded, its pod being deleted by TTL", deleting(complete), []corev1.Pod{testPod("p1", 0, phase(corev1.PodSucceeded), beingDeleted, terminated(0, string(good)))},
			v1alpha1.StageStatus{State: v1alpha1.StageSucceeded, Reason: "Succeeded", Message: "wrote " + task.OutputURI, Output: out, Attempts: 1}},
		{"deleted by TTL before its result was read", deleting(complete), nil, v1alpha1.StageStatus{State: v1alpha1.StagePending, Reason: "Pending", Attempts: 1,
			Message: "Job mnist-0-prune-abcdef completed but was deleted before its result was read; it runs again and reuses the artifact it wrote"}},
		{"complete but the pods are gone", complete, nil, v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "InvalidResult", Attempts: 1,
			Message: "Job mnist-0-prune-abcdef completed but none of its pods left a result in its termination message (pods gone before the controller read them? raise spec.ttlSecondsAfterFinished)"}},
		{"bad input fails at once", failed(batchv1.JobReasonPodFailurePolicy, "Container runner for pod ml/p1 failed with exit code 66 matching FailJob rule at index 0", 1),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(66, `{"version":"kompress.dev/v1","stage":"prune","reason":"InputNotFound","message":"s3://m/src.onnx: no such key"}`))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "InputNotFound", Attempts: 1,
				Message: "Container runner for pod ml/p1 failed with exit code 66 matching FailJob rule at index 0; runner exited with code 66: InputNotFound: s3://m/src.onnx: no such key"}},
		{"the runner's reason is more precise than its exit code's", failed(batchv1.JobReasonPodFailurePolicy, "Container runner for pod ml/p1 failed with exit code 65 matching FailJob rule at index 0", 1),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(65, `{"version":"kompress.dev/v1","stage":"prune","reason":"OutputRejected","message":"ONNX Runtime cannot load the output"}`))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "OutputRejected", Attempts: 1,
				Message: "Container runner for pod ml/p1 failed with exit code 65 matching FailJob rule at index 0; runner exited with code 65: OutputRejected: ONNX Runtime cannot load the output"}},
		{"a runner that died before its result: the exit code's reason", failed(batchv1.JobReasonPodFailurePolicy, "Container runner for pod ml/p1 failed with exit code 65 matching FailJob rule at index 0", 1),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(65, "panic: boom"))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "BadInput", Attempts: 1,
				Message: "Container runner for pod ml/p1 failed with exit code 65 matching FailJob rule at index 0; runner exited with code 65: panic: boom"}},
		// terminationMessagePolicy FallbackToLogsOnError: a runner that
		// died before its result leaves the tail of its log.
		{"died without a result: the kubelet's log tail", failed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", 1),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(2, "time=10:00 level=INFO msg=\"reading input\"\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:"))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "BackoffLimitExceeded", Attempts: 1,
				Message: "Job has reached the specified backoff limit; runner exited with code 2: time=10:00 level=INFO msg=\"reading input\"\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 1 [running]:"}},
		{"a JSON log line is not a result", failed(batchv1.JobReasonPodFailurePolicy, "Container runner for pod ml/p1 failed with exit code 66 matching FailJob rule at index 0", 1),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(66, `{"level":"error","reason":"Whatever","message":"no such key"}`))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "InputNotFound", Attempts: 1,
				Message: `Container runner for pod ml/p1 failed with exit code 66 matching FailJob rule at index 0; runner exited with code 66: {"level":"error","reason":"Whatever","message":"no such key"}`}},
		{"retries exhausted: the newest pod speaks", failed(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", 2),
			[]corev1.Pod{testPod("p1", 0, phase(corev1.PodFailed), terminated(1, "first")), testPod("p2", time.Minute, phase(corev1.PodFailed), terminated(1, "oom while reading"))},
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "BackoffLimitExceeded", Attempts: 2,
				Message: "Job has reached the specified backoff limit; runner exited with code 1: oom while reading"}},
		{"deadline without pods", failed(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline", 0), nil,
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "DeadlineExceeded", Message: "Job was active longer than specified deadline"}},
		{"unknown reason", failed("Made Up!", "", 1), nil,
			v1alpha1.StageStatus{State: v1alpha1.StageFailed, Reason: "StageFailed", Attempts: 1, Message: "Job mnist-0-prune-abcdef failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			want.Name, want.CacheKey, want.JobName, want.StartTime, want.CompletionTime = "prune", task.CacheKey, tc.job.Name, &t0, &t1
			if want.State == v1alpha1.StagePending {
				want.CompletionTime = nil
			}
			got := observeFinished(v1alpha1.StageStatus{Name: "prune", CacheKey: task.CacheKey}, tc.job, tc.pods, task)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("observeFinished (-want +got):\n%s", diff)
			}
		})
	}
}

// A pod that cannot pull its image has been failing since it was bound;
// other waiting reasons, running pods and pods being deleted do not count.
func TestImagePullFailingSince(t *testing.T) {
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "j", UID: "job-uid"}}
	bound := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	pod := func(name, reason string, phase corev1.PodPhase) corev1.Pod {
		return corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{UID: "job-uid", Controller: ptr.To(true)}}},
			Status: corev1.PodStatus{Phase: phase,
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: bound}},
				ContainerStatuses: []corev1.ContainerStatus{{Name: "runner", State: corev1.ContainerState{
					Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "m"}}}}},
		}
	}
	for _, c := range []struct {
		pod  corev1.Pod
		want bool
	}{
		{pod("a", "ImagePullBackOff", corev1.PodPending), true},
		{pod("b", "ErrImagePull", corev1.PodPending), true},
		{pod("c", "CreateContainerConfigError", corev1.PodPending), false},
		{pod("d", "ContainerCreating", corev1.PodPending), false},
	} {
		since, ok := imagePullFailingSince(job, []corev1.Pod{c.pod})
		if ok != c.want || (ok && !since.Equal(bound.Time)) {
			t.Errorf("pod %s (%s): %v %v, want %v since %v", c.pod.Name, c.pod.Status.ContainerStatuses[0].State.Waiting.Reason, since, ok, c.want, bound)
		}
	}
	other := pod("e", "ImagePullBackOff", corev1.PodPending)
	other.OwnerReferences[0].UID = "another"
	if _, ok := imagePullFailingSince(job, []corev1.Pod{other}); ok {
		t.Error("a pod of another Job counts")
	}
}
