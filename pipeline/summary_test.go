package pipeline

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

func threeStages() *v1alpha1.CompressionJobSpec {
	return &v1alpha1.CompressionJobSpec{Stages: []v1alpha1.Stage{{Name: "prune"}, {Name: "recover"}, {Name: "int8"}}}
}

func TestSummarize(t *testing.T) {
	out := &v1alpha1.Artifact{URI: "s3://o/k/model.onnx", Digest: "sha256:ab", SizeBytes: 9, Metrics: map[string]string{MetricAccuracyDrop: "0.05"}}
	st := func(name string, state v1alpha1.StageState, reason, msg string) v1alpha1.StageStatus {
		s := v1alpha1.StageStatus{Name: name, State: state, Reason: reason, Message: msg}
		if state == v1alpha1.StageSucceeded || state == v1alpha1.StageCached {
			s.Output = out
		}
		return s
	}
	suspended := threeStages()
	suspended.Suspend = true
	gated := threeStages()
	gated.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}
	cases := []struct {
		name   string
		spec   *v1alpha1.CompressionJobSpec
		stages []v1alpha1.StageStatus
		want   Summary
	}{
		{"first stage pending", threeStages(), []v1alpha1.StageStatus{
			st("prune", v1alpha1.StagePending, "", ""), st("recover", v1alpha1.StagePending, "", ""), st("int8", v1alpha1.StagePending, "", "")},
			Summary{Phase: PhaseInProgress, Reason: "Pending", Message: "stage prune is pending", CurrentStage: "prune", Total: 3}},
		{"second stage unschedulable", threeStages(), []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageSucceeded, "Succeeded", ""), st("recover", v1alpha1.StagePending, "Unschedulable", "0/3 nodes are available"),
			st("int8", v1alpha1.StagePending, "", "")},
			Summary{Phase: PhaseInProgress, Reason: "Unschedulable", Message: "0/3 nodes are available", CurrentStage: "recover", Done: 1, Total: 3}},
		{"suspended mid-run", suspended, []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageCached, "Cached", ""), st("recover", v1alpha1.StageSuspended, "Suspended", ""), st("int8", v1alpha1.StagePending, "", "")},
			Summary{Phase: PhaseSuspended, Reason: "Suspended", Message: "suspended at stage recover (1/3 done)", CurrentStage: "recover", Done: 1, Total: 3}},
		{"stage failed", threeStages(), []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageSucceeded, "", ""), st("recover", v1alpha1.StageFailed, "BackoffLimitExceeded", "out of memory"),
			st("int8", v1alpha1.StagePending, "", "")},
			Summary{Phase: PhaseFailed, Reason: "BackoffLimitExceeded", Message: "stage recover failed: out of memory", CurrentStage: "recover", Done: 1, Total: 3}},
		{"failure outranks suspension", suspended, []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageFailed, "", "boom"), st("recover", v1alpha1.StagePending, "", ""), st("int8", v1alpha1.StagePending, "", "")},
			Summary{Phase: PhaseFailed, Reason: "StageFailed", Message: "stage prune failed: boom", CurrentStage: "prune", Total: 3}},
		{"all done", threeStages(), []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageCached, "", ""), st("recover", v1alpha1.StageSucceeded, "", ""), st("int8", v1alpha1.StageSucceeded, "", "")},
			Summary{Phase: PhaseSucceeded, Reason: "Succeeded", Message: "all 3 stages done: s3://o/k/model.onnx (sha256:ab)", Done: 3, Total: 3, Output: out}},
		{"all done, one stage with warnings", threeStages(), []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageSucceeded, "SucceededWithWarnings", "wrote x; warning: LSTM weights left dense"),
			st("recover", v1alpha1.StageSucceeded, "", "wrote y"), st("int8", v1alpha1.StageSucceeded, "", "")},
			Summary{Phase: PhaseSucceeded, Reason: "Succeeded", Message: "all 3 stages done: s3://o/k/model.onnx (sha256:ab); with warnings from stage prune (see status.stages[].message)",
				Done: 3, Total: 3, Output: out}},
		{"quality gate missed keeps the output", gated, []v1alpha1.StageStatus{
			st("prune", v1alpha1.StageSucceeded, "", ""), st("recover", v1alpha1.StageSucceeded, "", ""), st("int8", v1alpha1.StageSucceeded, "", "")},
			Summary{Phase: PhaseFailed, Reason: "QualityGateFailed", Message: "the final model missed quality gates: maxAccuracyDrop: accuracyDrop 0.05 is above 0.01",
				Done: 3, Total: 3, Output: out}},
		{"status shorter than the spec", threeStages(), []v1alpha1.StageStatus{st("prune", v1alpha1.StageSucceeded, "", "")},
			Summary{Phase: PhaseInProgress, Reason: "Pending", Message: "1 of 3 stages have a status", Done: 1, Total: 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Summarize(tc.spec, tc.stages)); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSummaryApply(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	out := &v1alpha1.Artifact{URI: "s3://o/model.onnx"}
	cond := func(typ string, s metav1.ConditionStatus, reason string, at metav1.Time) metav1.Condition {
		return metav1.Condition{Type: typ, Status: s, Reason: reason, Message: "m", ObservedGeneration: 2, LastTransitionTime: at}
	}
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	running := Summary{Phase: PhaseInProgress, Reason: "Running", Message: "m", CurrentStage: "prune", Done: 0, Total: 2}
	cases := []struct {
		name   string
		before v1alpha1.CompressionJobStatus
		sum    Summary
		want   v1alpha1.CompressionJobStatus
	}{
		{"in progress", v1alpha1.CompressionJobStatus{}, running, v1alpha1.CompressionJobStatus{
			Progress: "0/2", CurrentStage: "prune",
			Conditions: []metav1.Condition{cond("Ready", F, "Running", t1), cond("Reconciling", T, "Running", t1),
				cond("Stalled", F, "Running", t1), cond("Suspended", F, "Running", t1)}}},
		{"succeeded keeps unchanged transition times", v1alpha1.CompressionJobStatus{
			Conditions: []metav1.Condition{cond("Ready", F, "Running", t0), cond("Reconciling", T, "Running", t0),
				cond("Stalled", F, "Running", t0), cond("Suspended", F, "Running", t0)}},
			Summary{Phase: PhaseSucceeded, Reason: "Succeeded", Message: "m", Done: 2, Total: 2, Output: out},
			v1alpha1.CompressionJobStatus{Progress: "2/2", Output: out, CompletionTime: &t1,
				Conditions: []metav1.Condition{cond("Ready", T, "Succeeded", t1), cond("Reconciling", F, "Succeeded", t1),
					cond("Stalled", F, "Succeeded", t0), cond("Suspended", F, "Succeeded", t0)}}},
		{"failed", v1alpha1.CompressionJobStatus{CompletionTime: &t0},
			Summary{Phase: PhaseFailed, Reason: "BadInput", Message: "m", CurrentStage: "prune", Total: 2},
			v1alpha1.CompressionJobStatus{Progress: "0/2", CurrentStage: "prune", CompletionTime: &t0,
				Conditions: []metav1.Condition{cond("Ready", F, "BadInput", t1), cond("Reconciling", F, "BadInput", t1),
					cond("Stalled", T, "BadInput", t1), cond("Suspended", F, "BadInput", t1)}}},
		{"suspended clears completion", v1alpha1.CompressionJobStatus{CompletionTime: &t0},
			Summary{Phase: PhaseSuspended, Reason: "Suspended", Message: "m", CurrentStage: "prune", Total: 2},
			v1alpha1.CompressionJobStatus{Progress: "0/2", CurrentStage: "prune",
				Conditions: []metav1.Condition{cond("Ready", F, "Suspended", t1), cond("Reconciling", F, "Suspended", t1),
					cond("Stalled", F, "Suspended", t1), cond("Suspended", T, "Suspended", t1)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.before
			tc.sum.Apply(&got, 2, t1)
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Apply (-want +got):\n%s", diff)
			}
		})
	}
}

// The controller and `kompress run` both decide with Summarize: a final
// model whose one-value output is 57% off (hello-deepa pruned 2:4) misses
// maxRelativeError "0.01" and the run fails with QualityGateFailed,
// keeping the output; the same model against a gate on cosine, which it
// cannot have, fails the same way.
func TestSummarizeRelativeErrorGates(t *testing.T) {
	out := &v1alpha1.Artifact{URI: "s3://o/k/model.onnx", Digest: "sha256:ab", SizeBytes: 9, Metrics: map[string]string{
		MetricRelativeError: "0.570059", MetricMaxAbsError: "0.859656", MetricSNRDb: "4.882",
	}}
	spec := func(a v1alpha1.AcceptanceSpec) *v1alpha1.CompressionJobSpec {
		return &v1alpha1.CompressionJobSpec{Stages: []v1alpha1.Stage{{Name: "nm"}}, Acceptance: &a}
	}
	done := []v1alpha1.StageStatus{{Name: "nm", State: v1alpha1.StageSucceeded, Output: out}}
	tests := []struct {
		name string
		spec *v1alpha1.CompressionJobSpec
		want Summary
	}{
		{"maxRelativeError missed", spec(v1alpha1.AcceptanceSpec{MaxRelativeError: "0.01"}), Summary{Phase: PhaseFailed, Reason: v1alpha1.ReasonQualityGateFailed,
			Message: "the final model missed quality gates: maxRelativeError: relativeError 0.570059 is above 0.01", Done: 1, Total: 1, Output: out}},
		{"minCosine on one value", spec(v1alpha1.AcceptanceSpec{MinCosine: "0.99"}), Summary{Phase: PhaseFailed, Reason: v1alpha1.ReasonQualityGateFailed,
			Message: "the final model missed quality gates: minCosine: metric cosine was not measured (an output of one value per sample has no cosine: gate it with maxRelativeError or minSnrDb)",
			Done:    1, Total: 1, Output: out}},
		{"loose gates pass", spec(v1alpha1.AcceptanceSpec{MaxRelativeError: "0.6", MinSnrDb: "3"}), Summary{Phase: PhaseSucceeded, Reason: v1alpha1.ReasonSucceeded,
			Message: "all 1 stages done: s3://o/k/model.onnx (sha256:ab)", Done: 1, Total: 1, Output: out}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, Summarize(tc.spec, done)); diff != "" {
				t.Errorf("Summarize (-want +got):\n%s", diff)
			}
		})
	}
}
