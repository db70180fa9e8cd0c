package controllers_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
)

// TestThreeStageRun drives prune -> distill -> quantize to the end, playing
// the Job controller and the kubelet, and checks each Job as it appears.
func TestThreeStageRun(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	e.create(t, &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "compress-" + ns}, Value: 100})

	edge := corev1.Toleration{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	gpu := corev1.Toleration{Key: "gpu", Operator: corev1.TolerationOpExists}
	affinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"}}}}}}}}
	cpj := newCPJ(ns, "mnist", pruneStage("prune"), distillStage("recover"), quantizeStage("int8"))
	cpj.Spec.TTLSecondsAfterFinished = ptr.To[int32](3600)
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{
		NodeSelector:      map[string]string{"pool": "edge"},
		Tolerations:       []corev1.Toleration{edge},
		Affinity:          affinity,
		PriorityClassName: "compress-" + ns,
		Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("1")}},
	}
	// The distill stage wants the GPU pool and more memory than the default
	// limit: the limit follows its request.
	cpj.Spec.Stages[1].NodeSelector = map[string]string{"pool": "gpu"}
	cpj.Spec.Stages[1].Tolerations = []corev1.Toleration{gpu}
	cpj.Spec.Stages[1].Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("4Gi")}}
	cpj.Spec.Stages[1].ActiveDeadlineSeconds = ptr.To[int64](600)
	cpj.Spec.Stages[2].BackoffLimit = ptr.To[int32](5)
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)

	var prev *v1alpha1.Artifact
	for i, stage := range cpj.Spec.Stages {
		jobs := e.waitJobs(t, cpj, i+1)
		job := &jobs[i]
		task := taskOf(t, job)
		cur := e.waitCPJ(t, key, fmt.Sprintf("stage %s pending", stage.Name), func(c *v1alpha1.CompressionJob) bool {
			return stageState(c, i) == v1alpha1.StagePending && c.Status.Stages[i].JobName == job.Name &&
				hasCond(c, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonPending)
		})
		if n := len(e.jobs(t, cpj)); n != i+1 {
			t.Fatalf("%d Jobs while stage %d is pending, want %d: stages run one at a time", n, i, i+1)
		}
		if got := kstatusOf(t, cur); got != kstatus.InProgressStatus {
			t.Errorf("stage %d pending: kstatus %s, want InProgress", i, got)
		}
		if got, want := cur.Status.Progress, fmt.Sprintf("%d/3", i); got != want {
			t.Errorf("progress %q, want %q", got, want)
		}
		checkTask(t, cur, i, task, prev)
		checkJob(t, cur, i, job, task)
		switch i {
		case 0:
			checkPlacement(t, job, map[string]string{"kompress.dev/pool": "compress", "pool": "edge"},
				append(append([]corev1.Toleration{}, testDefaults.Tolerations...), edge),
				corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("512Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("2Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("4Gi")},
				})
		case 1:
			checkPlacement(t, job, map[string]string{"kompress.dev/pool": "compress", "pool": "gpu"},
				append(append([]corev1.Toleration{}, testDefaults.Tolerations...), edge, gpu),
				corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("256Mi")},
					Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi"), corev1.ResourceEphemeralStorage: resource.MustParse("4Gi")},
				})
			if got := ptr.Deref(job.Spec.ActiveDeadlineSeconds, 0); got != 600 {
				t.Errorf("distill Job activeDeadlineSeconds %d, want 600", got)
			}
		case 2:
			if got := ptr.Deref(job.Spec.BackoffLimit, 0); got != 5 {
				t.Errorf("int8 Job backoffLimit %d, want 5", got)
			}
		}
		if diff := cmp.Diff(affinity, job.Spec.Template.Spec.Affinity); diff != "" {
			t.Errorf("Job %s affinity (-want +got):\n%s", job.Name, diff)
		}

		// The pod starts: the stage is Running.
		pod := e.startPod(t, job, "node-a")
		if err := controlplaneSetRunning(e, pod); err != nil {
			t.Fatal(err)
		}
		e.waitCPJ(t, key, fmt.Sprintf("stage %s running", stage.Name), func(c *v1alpha1.CompressionJob) bool {
			return stageState(c, i) == v1alpha1.StageRunning && hasCond(c, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonRunning)
		})

		// It ends with its result; the Job completes.
		r := resultFor(task, map[string]string{pipeline.MetricBytes: "9000", pipeline.MetricAccuracyDrop: "0.001"})
		e.finishPod(t, pod, 0, termMessage(t, r))
		e.completeJob(t, job)
		cur = e.waitCPJ(t, key, fmt.Sprintf("stage %s succeeded", stage.Name), func(c *v1alpha1.CompressionJob) bool {
			return stageState(c, i) == v1alpha1.StageSucceeded
		})
		got := cur.Status.Stages[i]
		if diff := cmp.Diff(r.Output, got.Output); diff != "" {
			t.Errorf("stage %d output (-want +got):\n%s", i, diff)
		}
		if got.Attempts != 1 || got.StartTime == nil || got.CompletionTime == nil || got.CacheKey != task.CacheKey {
			t.Errorf("stage %d status: attempts %d, start %v, completion %v, key %s", i, got.Attempts, got.StartTime, got.CompletionTime, got.CacheKey)
		}
		prev = r.Output
	}

	done := e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if diff := cmp.Diff(prev, done.Status.Output); diff != "" {
		t.Errorf("status.output (-want +got):\n%s", diff)
	}
	wantConds := []metav1.Condition{
		{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSucceeded},
		{Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSucceeded},
		{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSucceeded},
		{Type: v1alpha1.ConditionSuspended, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonSucceeded},
	}
	if diff := cmp.Diff(wantConds, done.Status.Conditions, cmpopts.IgnoreFields(metav1.Condition{}, "Message", "LastTransitionTime", "ObservedGeneration")); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if done.Status.Progress != "3/3" || done.Status.CurrentStage != "" || done.Status.CompletionTime == nil || done.Status.StartTime == nil {
		t.Errorf("status: progress %q, current stage %q, start %v, completion %v", done.Status.Progress, done.Status.CurrentStage, done.Status.StartTime, done.Status.CompletionTime)
	}
	if got := kstatusOf(t, done); got != kstatus.CurrentStatus {
		t.Errorf("kstatus at the end: %s, want Current", got)
	}
	if n := len(e.jobs(t, cpj)); n != 3 {
		t.Errorf("%d Jobs at the end, want 3", n)
	}
	for _, s := range cpj.Spec.Stages {
		e.waitEvent(t, cpj, controllers.EventStageStarted, "for stage "+s.Name)
		e.waitEvent(t, cpj, controllers.EventStageRunning, "stage "+s.Name)
		e.waitEvent(t, cpj, controllers.EventStageSucceeded, "stage "+s.Name)
	}
	e.waitEvent(t, cpj, v1alpha1.ReasonSucceeded, prev.URI)
	if v := gaugeValue(t, controllers.MetricJobs, "state", string(pipeline.PhaseSucceeded)); v < 1 {
		t.Errorf("%s{state=Succeeded} = %v, want at least 1", controllers.MetricJobs, v)
	}
	if v := histogramCount(t, controllers.MetricStageDuration); v < 3 {
		t.Errorf("%s has %d observations, want at least 3", controllers.MetricStageDuration, v)
	}
}

func checkTask(t *testing.T, cpj *v1alpha1.CompressionJob, i int, task pipeline.Task, prev *v1alpha1.Artifact) {
	t.Helper()
	wantInput := pipeline.Ref{URI: cpj.Spec.Source.URI, Digest: "sha256:" + sourceSHA}
	if prev != nil {
		wantInput = pipeline.Ref{URI: prev.URI, Digest: prev.Digest}
	}
	want, err := pipeline.NewTask(cpj.Namespace+"/"+cpj.Name, &cpj.Spec, i, wantInput, testDefaults.RunnerVersion)
	if err != nil {
		t.Fatal(err)
	}
	want.SetChain(&cpj.Spec, cpj.Status.Stages) // the last stage carries the chain for release.json
	if diff := cmp.Diff(want, task); diff != "" {
		t.Errorf("stage %d task (-want +got):\n%s", i, diff)
	}
	if task.Input != wantInput {
		t.Errorf("stage %d reads %+v, want %+v", i, task.Input, wantInput)
	}
}

func checkJob(t *testing.T, cpj *v1alpha1.CompressionJob, i int, job *batchv1.Job, task pipeline.Task) {
	t.Helper()
	stage := cpj.Spec.Stages[i]
	if want := pipeline.JobName(cpj.Name, i, stage.Name, task.CacheKey); job.Name != want {
		t.Errorf("Job name %s, want %s", job.Name, want)
	}
	wantLabels := map[string]string{controllers.LabelJob: cpj.Name, controllers.LabelStage: stage.Name, controllers.LabelStageIndex: fmt.Sprint(i)}
	if diff := cmp.Diff(wantLabels, job.Labels); diff != "" {
		t.Errorf("Job labels (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantLabels, job.Spec.Template.Labels, cmpopts.IgnoreMapEntries(func(k, _ string) bool {
		return k == "batch.kubernetes.io/controller-uid" || k == "batch.kubernetes.io/job-name" || k == "controller-uid" || k == "job-name"
	})); diff != "" {
		t.Errorf("pod template labels (-want +got):\n%s", diff)
	}
	if got := job.Annotations[controllers.AnnotationCacheKey]; got != task.CacheKey {
		t.Errorf("cache-key annotation %q, want %q", got, task.CacheKey)
	}
	ref := metav1.GetControllerOf(job)
	if ref == nil || ref.UID != cpj.UID || ref.Kind != "CompressionJob" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("Job controller reference %+v, want the CompressionJob %s", ref, cpj.UID)
	}
	spec := job.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || spec.ServiceAccountName != "kompress-runner" ||
		!ptr.Deref(spec.SecurityContext.RunAsNonRoot, false) || ptr.Deref(spec.AutomountServiceAccountToken, true) {
		t.Errorf("pod spec: restartPolicy %s, serviceAccount %s, runAsNonRoot %v, automount %v",
			spec.RestartPolicy, spec.ServiceAccountName, spec.SecurityContext.RunAsNonRoot, spec.AutomountServiceAccountToken)
	}
	if spec.PriorityClassName != cpj.Spec.Scheduling.PriorityClassName {
		t.Errorf("priorityClassName %q, want %q", spec.PriorityClassName, cpj.Spec.Scheduling.PriorityClassName)
	}
	if got := ptr.Deref(job.Spec.TTLSecondsAfterFinished, -1); got != 3600 {
		t.Errorf("ttlSecondsAfterFinished %d, want 3600", got)
	}
	if job.Spec.PodFailurePolicy == nil || len(job.Spec.PodFailurePolicy.Rules) != 2 ||
		job.Spec.PodFailurePolicy.Rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
		!cmp.Equal(job.Spec.PodFailurePolicy.Rules[0].OnExitCodes.Values, pipeline.PermanentExitCodes) {
		t.Errorf("podFailurePolicy %+v", job.Spec.PodFailurePolicy)
	}
	c := spec.Containers[0]
	if c.Name != "runner" || c.Image != testDefaults.RunnerImage || !cmp.Equal(c.Command, []string{"kompress", "stage"}) ||
		c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || !ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) {
		t.Errorf("container: name %s image %s command %v terminationMessagePolicy %s", c.Name, c.Image, c.Command, c.TerminationMessagePolicy)
	}
	var names []string
	for _, env := range c.Env {
		names = append(names, env.Name)
	}
	if diff := cmp.Diff([]string{"KOMPRESS_TASK", "KOMPRESS_MEMORY_LIMIT", "GOMAXPROCS", "KOMPRESS_NODE_NAME", "POD_NAME"}, names); diff != "" {
		t.Errorf("container env names (-want +got):\n%s", diff)
	}
}

func checkPlacement(t *testing.T, job *batchv1.Job, selector map[string]string, tolerations []corev1.Toleration, res corev1.ResourceRequirements) {
	t.Helper()
	spec := job.Spec.Template.Spec
	if diff := cmp.Diff(selector, spec.NodeSelector); diff != "" {
		t.Errorf("Job %s nodeSelector (-want +got):\n%s", job.Name, diff)
	}
	if diff := cmp.Diff(tolerations, spec.Tolerations); diff != "" {
		t.Errorf("Job %s tolerations (-want +got):\n%s", job.Name, diff)
	}
	if diff := cmp.Diff(res, spec.Containers[0].Resources, cmp.Comparer(func(a, b resource.Quantity) bool { return a.Cmp(b) == 0 })); diff != "" {
		t.Errorf("Job %s resources (-want +got):\n%s", job.Name, diff)
	}
	// /tmp holds no more than the container may use of the node's disk.
	lim := res.Limits[corev1.ResourceEphemeralStorage]
	if size := spec.Volumes[0].EmptyDir.SizeLimit; size == nil || size.Cmp(lim) != 0 {
		t.Errorf("Job %s: /tmp sizeLimit %v, want the ephemeral-storage limit %s", job.Name, size, lim.String())
	}
}

func gaugeValue(t *testing.T, name, label, value string) float64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func histogramCount(t *testing.T, name string) uint64 {
	t.Helper()
	mfs, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}
