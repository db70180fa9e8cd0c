package controllers_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
)

// sweepCPJ is prune -> int8 with spec.variants over params.
func sweepCPJ(ns, name string, maxParallel int32, params ...v1alpha1.VariantParameter) *v1alpha1.CompressionJob {
	cpj := newCPJ(ns, name, pruneStage("prune"), quantizeStage("int8"))
	cpj.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}
	cpj.Spec.Variants = &v1alpha1.VariantsSpec{Parameters: params, Select: v1alpha1.SelectSmallest, MaxParallel: maxParallel}
	return cpj
}

// jobsByRun maps the stage Jobs of cpj to their status.stages entry names
// (as the CompressionJob's status reports them).
func (e *env) jobsByName(t testing.TB, cpj *v1alpha1.CompressionJob) map[string]*batchv1.Job {
	t.Helper()
	out := map[string]*batchv1.Job{}
	for _, j := range e.jobs(t, cpj) {
		out[j.Name] = &j
	}
	return out
}

// runJob waits until status names a Job for the run and returns it.
func (e *env) runJob(t testing.TB, cpj *v1alpha1.CompressionJob, run string) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	key := client.ObjectKeyFromObject(cpj)
	e.waitCPJ(t, key, "a Job for "+run, func(c *v1alpha1.CompressionJob) bool {
		for _, s := range c.Status.Stages {
			if s.Name == run && s.JobName != "" {
				job = e.jobsByName(t, cpj)[s.JobName]
			}
		}
		return job != nil
	})
	return job
}

func runNames(jobs []batchv1.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Labels[controllers.LabelStage]+"@"+j.Labels[controllers.LabelStageIndex])
	}
	sort.Strings(out)
	return out
}

// A sweep of three variants with maxParallel 2: never more than two stage
// Jobs unfinished; a failed run fails only its variant; once every
// variant is done the select step runs as a Job of its own, and the
// sweep is Ready with the selected variant's model in status.output.
func TestSweep(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "sweep", 2, v1alpha1.VariantParameter{Stage: "prune", Field: "sparsity", Values: []string{"0.3", "0.6", "0.9"}})
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{QueueName: "team-a"}
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)

	jobs := e.waitJobs(t, cpj, 2)
	cur := e.waitCPJ(t, key, "two runs pending", func(c *v1alpha1.CompressionJob) bool {
		return len(c.Status.Stages) == 7 && c.Status.Stages[0].JobName != "" && c.Status.Stages[1].JobName != "" &&
			strings.Contains(c.Status.Stages[2].Message, "spec.variants.maxParallel")
	})
	var names []string
	for _, s := range cur.Status.Stages {
		names = append(names, s.Name)
	}
	if diff := cmp.Diff([]string{"prune/v1", "prune/v2", "prune/v3", "int8/v1", "int8/v2", "int8/v3", "select"}, names); diff != "" {
		t.Errorf("status.stages (-want +got):\n%s", diff)
	}
	if len(cur.Status.Variants) != 3 || cur.Status.Variants[2].Parameters["prune.sparsity"] != "0.9" || cur.Status.Variants[0].Phase != v1alpha1.VariantPending ||
		cur.Status.Progress != "0/7" || kstatusOf(t, cur) != kstatus.InProgressStatus {
		t.Errorf("status while two runs wait: %+v", cur.Status)
	}
	for _, j := range jobs {
		// Every Job goes through Kueue: labelled with the queue, created
		// suspended.
		if j.Labels[controllers.LabelQueueName] != "team-a" || !ptr.Deref(j.Spec.Suspend, false) {
			t.Errorf("Job %s: queue %q, suspend %v", j.Name, j.Labels[controllers.LabelQueueName], j.Spec.Suspend)
		}
		if task := taskOf(t, &j); task.Stage.Prune == nil || task.Index != 0 {
			t.Errorf("Job %s runs %+v", j.Name, task.Stage)
		}
	}

	metrics := func(drop, nonzero string) map[string]string {
		return map[string]string{pipeline.MetricAccuracyDrop: drop, pipeline.MetricNonzeroParams: nonzero, pipeline.MetricBytes: "7000"}
	}
	// prune/v1 succeeds: prune/v3 comes next (plan order), not int8/v1:
	// two are unfinished again.
	e.succeedStage(t, e.runJob(t, cpj, "prune/v1"), nil)
	pruneV3 := e.runJob(t, cpj, "prune/v3")
	if got := runNames(e.jobs(t, cpj)); !cmp.Equal(got, []string{"prune@0", "prune@0", "prune@0"}) {
		t.Errorf("Jobs after prune/v1: %v", got)
	}
	// prune/v3 fails: only v3 fails; int8/v1 starts.
	pod := e.startPod(t, pruneV3, "node-a")
	e.finishPod(t, pod, int32(pipeline.ExitBadInput), termMessage(t, pipeline.Result{Version: pipeline.ContractVersion, Stage: "prune", Reason: "BadInput", Message: "too sparse"}))
	e.failJob(t, pruneV3, batchv1.JobReasonPodFailurePolicy, "exit code 65", 1)
	int8V1 := e.runJob(t, cpj, "int8/v1")
	cur = e.waitCPJ(t, key, "v3 failed", func(c *v1alpha1.CompressionJob) bool {
		return len(c.Status.Variants) == 3 && c.Status.Variants[2].Phase == v1alpha1.VariantFailed
	})
	if v := cur.Status.Variants[2]; v.Reason != "BadInput" || !strings.Contains(v.Message, "stage prune/v3 failed") || v.Passed != nil {
		t.Errorf("v3: %+v", v)
	}
	if s := cur.Status.Stages[5]; s.Name != "int8/v3" || s.State != v1alpha1.StagePending || s.JobName != "" || !strings.Contains(s.Message, "not run: stage prune/v3 failed") {
		t.Errorf("int8/v3: %+v", s)
	}
	if !hasCond(cur, v1alpha1.ConditionReconciling, metav1.ConditionTrue, cond(cur, v1alpha1.ConditionReconciling).Reason) {
		t.Errorf("a failed variant stalled the sweep: %s", conditionsOf(cur))
	}

	e.succeedStage(t, e.runJob(t, cpj, "prune/v2"), nil)
	int8V2 := e.runJob(t, cpj, "int8/v2")
	r1 := e.succeedStage(t, int8V1, metrics("0", "4204"))
	r2 := e.succeedStage(t, int8V2, metrics("0.007", "2410"))

	// Every variant is done: the select step's Job, which names every
	// variant's model (or why it has none).
	sel := e.runJob(t, cpj, "select")
	task := taskOf(t, sel)
	if sel.Labels[controllers.LabelStage] != "select" || task.Select == nil || len(task.Select.Variants) != 3 ||
		task.Select.Variants[0].Output.URI != r1.Output.URI || task.Select.Variants[2].Output != nil || task.Select.Variants[2].Reason != "BadInput" {
		t.Fatalf("select Job %s: task %+v", sel.Name, task.Select)
	}
	if c := sel.Spec.Template.Spec.Containers[0]; c.Image != testDefaults.RunnerImage || !cmp.Equal(c.Command, []string{"kompress", "stage"}) {
		t.Errorf("the select step runs %s %v, want the runner", c.Image, c.Command)
	}
	out := *r2.Output
	selRes := pipeline.Result{Version: pipeline.ContractVersion, Stage: "select", CacheKey: task.CacheKey, Output: &out}
	pod = e.startPod(t, sel, "node-a")
	e.finishPod(t, pod, 0, termMessage(t, selRes))
	e.completeJob(t, sel)

	done := e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if done.Status.Output == nil || done.Status.Output.URI != r2.Output.URI || done.Status.Progress != "7/7" || kstatusOf(t, done) != kstatus.CurrentStatus {
		t.Errorf("status.output %+v, progress %s", done.Status.Output, done.Status.Progress)
	}
	wantSel := &v1alpha1.SelectionStatus{Policy: v1alpha1.SelectSmallest, Variant: "v2", Passed: ptr.To(true),
		Release: task.OutputURI, Report: pipeline.SiblingURI(task.OutputURI, pipeline.ReportFile)}
	if diff := cmp.Diff(wantSel, done.Status.Selection); diff != "" {
		t.Errorf("status.selection (-want +got):\n%s", diff)
	}
	if msg := cond(done, v1alpha1.ConditionReady).Message; !strings.HasPrefix(msg, "selected v2 (prune.sparsity=0.6), the smallest of the 2 of 3 variants that passed") {
		t.Errorf("Ready message %q", msg)
	}
	var phases []string
	for _, v := range done.Status.Variants {
		phases = append(phases, v.Name+" "+string(v.Phase))
	}
	if !cmp.Equal(phases, []string{"v1 Succeeded", "v2 Succeeded", "v3 Failed"}) {
		t.Errorf("variants %v", phases)
	}
	if n := len(e.jobs(t, cpj)); n != 6 {
		t.Errorf("%d Jobs, want 6: 3 prune, 2 int8, 1 select", n)
	}
	e.waitEvent(t, cpj, v1alpha1.ReasonSucceeded, "selected v2")
}

// Stages that are the same in several variants run once: a sweep over the
// last stage runs its first stage in one Job, shared by both variants'
// chains.
func TestSweepSharesPrefixStages(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "bits", 4, v1alpha1.VariantParameter{Stage: "int8", Field: "calibration.method", Values: []string{"minmax", "entropy"}})
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	jobs := e.waitJobs(t, cpj, 1)
	e.succeedStage(t, &jobs[0], nil)
	jobs = e.waitJobs(t, cpj, 3)
	if got := runNames(jobs); !cmp.Equal(got, []string{"int8@1", "int8@1", "prune@0"}) {
		t.Fatalf("Jobs %v, want one prune and two int8", got)
	}
	methods := map[string]bool{}
	for _, j := range jobs[1:] {
		task := taskOf(t, &j)
		methods[string(task.Stage.Quantize.Calibration.Method)] = true
		if task.Input.URI != taskOf(t, &jobs[0]).OutputURI {
			t.Errorf("Job %s reads %s, not the shared prune output", j.Name, task.Input.URI)
		}
	}
	if !methods["minmax"] || !methods["entropy"] {
		t.Errorf("calibration methods of the int8 Jobs: %v", methods)
	}
	cur := e.waitCPJ(t, key, "both int8 runs planned", func(c *v1alpha1.CompressionJob) bool {
		return len(c.Status.Stages) == 4 && c.Status.Stages[2].JobName != ""
	})
	if !cmp.Equal(cur.Status.Variants[0].Stages, []string{"prune/v1", "int8/v1"}) || !cmp.Equal(cur.Status.Variants[1].Stages, []string{"prune/v1", "int8/v2"}) {
		t.Errorf("chains %v and %v, want prune/v1 shared", cur.Status.Variants[0].Stages, cur.Status.Variants[1].Stages)
	}
}

// A value a field's own rules refuse cannot be caught by CEL on
// spec.variants: the controller stalls the job before any Job exists, with
// reason InvalidVariants and the words `kompress run` uses.
func TestSweepInvalidVariants(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "bad", 4, v1alpha1.VariantParameter{Stage: "int8", Field: "bits", Values: []string{"8", "4"}})
	e.create(t, cpj)
	want, err := jobfile.ExpandVariants(&cpj.Spec)
	if err == nil {
		t.Fatalf("jobfile accepted the variants: %v", want)
	}
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidVariants)
	})
	if msg := cond(got, v1alpha1.ConditionStalled).Message; msg != err.Error() {
		t.Errorf("Stalled message\n%s\nwant kompress run's\n%s", msg, err)
	}
	if !strings.Contains(err.Error(), "variant v2 (int8.bits=4) is not a valid spec: spec.stages[1].quantize: Invalid value: quantize.bits 4 is only supported with method weightOnly") {
		t.Errorf("message %q", err)
	}
	if kstatusOf(t, got) != kstatus.FailedStatus || len(e.jobs(t, cpj)) != 0 {
		t.Errorf("kstatus %s, %d Jobs", kstatusOf(t, got), len(e.jobs(t, cpj)))
	}
	// Fixing the spec starts the sweep.
	got.Spec.Variants.Parameters[0].Values = []string{"8"}
	if err := e.client.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	e.waitJobs(t, cpj, 1)
}

func conditionsOf(c *v1alpha1.CompressionJob) string {
	var out []string
	for _, x := range c.Status.Conditions {
		out = append(out, x.Type+"="+string(x.Status)+" "+x.Reason)
	}
	return strings.Join(out, ", ")
}

// No variant passes spec.acceptance: the select step still runs (its
// report explains), and the sweep stalls with QualityGateFailed, keeping
// the best model by the policy in status.output.
func TestSweepNoVariantPasses(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "strict", 4, v1alpha1.VariantParameter{Stage: "prune", Field: "sparsity", Values: []string{"0.8", "0.9"}})
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	for _, run := range []string{"prune/v1", "prune/v2"} {
		e.succeedStage(t, e.runJob(t, cpj, run), nil)
	}
	e.succeedStage(t, e.runJob(t, cpj, "int8/v1"), map[string]string{pipeline.MetricAccuracyDrop: "0.2", pipeline.MetricNonzeroParams: "900"})
	r2 := e.succeedStage(t, e.runJob(t, cpj, "int8/v2"), map[string]string{pipeline.MetricAccuracyDrop: "0.6", pipeline.MetricNonzeroParams: "600"})
	sel := e.runJob(t, cpj, "select")
	task := taskOf(t, sel)
	pod := e.startPod(t, sel, "node-a")
	e.finishPod(t, pod, 0, termMessage(t, pipeline.Result{Version: pipeline.ContractVersion, Stage: "select", CacheKey: task.CacheKey, Output: r2.Output}))
	e.completeJob(t, sel)
	got := e.waitCPJ(t, key, "QualityGateFailed", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonQualityGateFailed)
	})
	if got.Status.Output == nil || got.Status.Output.URI != r2.Output.URI || got.Status.Selection.Variant != "v2" || *got.Status.Selection.Passed {
		t.Errorf("output %+v, selection %+v; want v2's model kept (same size, fewer nonzero weights)", got.Status.Output, got.Status.Selection)
	}
	if msg := cond(got, v1alpha1.ConditionStalled).Message; !strings.Contains(msg, "v1: maxAccuracyDrop: accuracyDrop 0.2 is above 0.01") || !strings.Contains(msg, "kept the smallest, v2") {
		t.Errorf("Stalled message %q", msg)
	}
}

// A suspended sweep creates no Job; resumed, it starts as many as
// maxParallel allows.
func TestSweepSuspended(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "held", 2, v1alpha1.VariantParameter{Stage: "prune", Field: "sparsity", Values: []string{"0.3", "0.6", "0.9"}})
	cpj.Spec.Suspend = true
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	got := e.waitCPJ(t, key, "Suspended", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionSuspended, metav1.ConditionTrue, v1alpha1.ReasonSuspended)
	})
	if n := len(e.jobs(t, cpj)); n != 0 || got.Status.Stages[0].State != v1alpha1.StageSuspended || got.Status.Variants[0].Phase != v1alpha1.VariantSuspended {
		t.Errorf("%d Jobs, stage %s, variant %s", n, got.Status.Stages[0].State, got.Status.Variants[0].Phase)
	}
	got.Spec.Suspend = false
	if err := e.client.Update(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	e.waitJobs(t, cpj, 2)
}

// A variant refused for several reasons at once: the API server's causes
// are put together as `kompress run` puts its field errors together.
func TestSweepInvalidVariantsSeveralCauses(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "bad2", 4,
		v1alpha1.VariantParameter{Stage: "prune", Field: "sparsity", Values: []string{"1.5", "0.5"}},
		v1alpha1.VariantParameter{Stage: "int8", Field: "bits", Values: []string{"4"}})
	e.create(t, cpj)
	_, err := jobfile.ExpandVariants(&cpj.Spec)
	if err == nil || !strings.Contains(err.Error(), "variant v1 (prune.sparsity=1.5, int8.bits=4) is not a valid spec: [") {
		t.Fatalf("kompress run says %v, want v1 refused for two reasons", err)
	}
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Stalled", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, v1alpha1.ReasonInvalidVariants)
	})
	if diff := cmp.Diff(err.Error(), cond(got, v1alpha1.ConditionStalled).Message); diff != "" {
		t.Errorf("Stalled message differs from kompress run's (-run +controller):\n%s", diff)
	}
}

// A namespace whose ResourceQuota on CompressionJobs is used up forbids
// the dry-run creates that check the variants: the job says so in status
// (Reconciling, reason VariantsUnchecked, the API server's words) instead
// of failing silently in a retry loop, creates no Job, and starts once
// the quota is lifted.
func TestSweepVariantsForbiddenByQuota(t *testing.T) {
	e := sharedEnv(t)
	ctx := context.Background()
	ns := e.namespace(t)
	cpj := sweepCPJ(ns, "quota", 4, v1alpha1.VariantParameter{Stage: "prune", Field: "sparsity", Values: []string{"0.3", "0.6"}})
	// The quota comes after the job, so the job itself is admitted; its
	// status is set by hand, as the quota controller (not running here)
	// would: one CompressionJob allowed, one used.
	cpj.Spec.Suspend = true
	e.create(t, cpj)
	count := corev1.ResourceName("count/compressionjobs.kompress.dev")
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "one-job"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{count: resource.MustParse("1")}}}
	if err := e.client.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	quota.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: corev1.ResourceList{count: resource.MustParse("1")}}
	if err := e.client.Status().Update(ctx, quota); err != nil {
		t.Fatal(err)
	}
	resume := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"suspend":false}}`))
	if err := e.client.Patch(ctx, &v1alpha1.CompressionJob{ObjectMeta: cpj.ObjectMeta}, resume); err != nil {
		t.Fatal(err)
	}
	got := e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "VariantsUnchecked", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReconciling, metav1.ConditionTrue, v1alpha1.ReasonVariantsUnchecked)
	})
	msg := cond(got, v1alpha1.ConditionReconciling).Message
	if !strings.Contains(msg, "forbids") || !strings.Contains(msg, "exceeded quota: one-job") {
		t.Errorf("Reconciling message %q: want the dry-run's refusal by the quota", msg)
	}
	if n := len(e.jobs(t, cpj)); n != 0 {
		t.Errorf("%d Jobs created while the variants are unchecked", n)
	}
	if err := e.client.Delete(ctx, quota); err != nil {
		t.Fatal(err)
	}
	e.waitJobs(t, cpj, 1)
}
