//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// A model that misses a quality gate: every stage succeeds, the run ends
// Stalled with reason QualityGateFailed naming the gate, and the model is
// still reported in status.output (and in the bucket) — never dropped.
func TestQualityGateMissed(t *testing.T) {
	t.Parallel()
	const ns, name = "e2e-gates", "too-sparse"
	rec := record(t, ns, name)
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Stages[0].Prune.Sparsity = "0.9"
	cpj.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01", MaxLatency: &metav1.Duration{Duration: time.Second}}
	apply(t, ns, manifest(t, cpj))
	failed := rec.waitFor(t, 90*time.Second, "Stalled", stalled)
	saveFixture(t, "quality-gate", failed)
	got := failed.Object
	st := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionStalled)
	if st.Reason != v1alpha1.ReasonQualityGateFailed || !strings.Contains(st.Message, "maxAccuracyDrop: accuracyDrop ") {
		t.Errorf("Stalled = %s: %q, want QualityGateFailed naming maxAccuracyDrop", st.Reason, st.Message)
	}
	if strings.Contains(st.Message, "maxLatency") {
		t.Errorf("the latency gate passed but is reported: %q", st.Message)
	}
	if failed.Kstatus != kstatus.FailedStatus {
		t.Errorf("kstatus %s, want Failed", failed.Kstatus)
	}
	for _, s := range got.Status.Stages {
		if s.State != v1alpha1.StageSucceeded {
			t.Errorf("stage %s is %s, want Succeeded: the gate is on the result, not the stages", s.Name, s.State)
		}
	}
	if got.Status.Output == nil {
		t.Fatal("status.output dropped for a model that missed a gate")
	}
	verifyArtifact(t, got.Status.Output)
	drop, err := strconv.ParseFloat(got.Status.Output.Metrics[pipeline.MetricAccuracyDrop], 64)
	if err != nil || drop <= 0.01 {
		t.Errorf("accuracyDrop %q: the test expects 90%% sparsity to cost more than a point", got.Status.Output.Metrics[pipeline.MetricAccuracyDrop])
	}
}

// The runner ServiceAccount missing from the job's namespace (the chart
// did not list it): the run stalls with a reason naming the account and the
// fix, and starts once the account exists.
func TestMissingRunnerServiceAccount(t *testing.T) {
	t.Parallel()
	const ns, name = noRunnerSANamespace, "no-sa"
	rec := record(t, ns, name)
	apply(t, ns, manifest(t, quantizeJob(ns, name)))
	failed := rec.waitFor(t, 30*time.Second, "Stalled", stalled)
	saveFixture(t, "no-runner-serviceaccount", failed)
	st := meta.FindStatusCondition(failed.Object.Status.Conditions, v1alpha1.ConditionStalled)
	if st.Reason != v1alpha1.ReasonServiceAccountNotFound || !strings.Contains(st.Message, "runner.serviceAccount.namespaces={"+ns+"}") {
		t.Errorf("Stalled = %s: %q", st.Reason, st.Message)
	}
	if n := len(jobsOf(t, ns, name)); n != 0 {
		t.Errorf("%d Jobs created without the ServiceAccount", n)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: cl.runnerSA}}
	if err := cl.client.Create(context.Background(), sa); err != nil {
		t.Fatal(err)
	}
	// The manager looks again every 30 s.
	rec.waitFor(t, 90*time.Second, "Ready", ready)
}
