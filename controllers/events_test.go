package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestTransitionEvents(t *testing.T) {
	out := &v1alpha1.Artifact{URI: "s3://o/k/model.onnx", Digest: "sha256:ab", SizeBytes: 7}
	stage := func(name string, state v1alpha1.StageState, reason string) v1alpha1.StageStatus {
		s := v1alpha1.StageStatus{Name: name, JobName: "j-" + name, CacheKey: "key-" + name, State: state, Reason: reason, Message: "msg"}
		if state == v1alpha1.StageSucceeded || state == v1alpha1.StageCached {
			s.Output = out
		}
		return s
	}
	conds := func(ready, stalled, suspended metav1.ConditionStatus, reason string) []metav1.Condition {
		return []metav1.Condition{
			{Type: "Ready", Status: ready, Reason: reason, Message: "m-" + reason},
			{Type: "Stalled", Status: stalled, Reason: reason, Message: "m-" + reason},
			{Type: "Suspended", Status: suspended, Reason: reason, Message: "m-" + reason},
		}
	}
	F, T := metav1.ConditionFalse, metav1.ConditionTrue
	cases := []struct {
		name     string
		old, cur v1alpha1.CompressionJobStatus
		want     []event
	}{
		{"nothing changed", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}}, nil},
		{"started running", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StagePending, "Pending")}},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}},
			[]event{{Type: "Normal", Reason: EventStageRunning, Action: "RunStage", Note: "stage a is running: msg", Job: "j-a"}}},
		{"succeeded and the run is ready", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}, Conditions: conds(F, F, F, "Running")},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageSucceeded, "Succeeded")}, Conditions: conds(T, F, F, "Succeeded")},
			[]event{
				{Type: "Normal", Reason: EventStageSucceeded, Action: "RunStage", Note: "stage a wrote s3://o/k/model.onnx (sha256:ab, 7 bytes)", Job: "j-a"},
				{Type: "Normal", Reason: "Succeeded", Action: "Complete", Note: "m-Succeeded"},
			}},
		{"succeeded with warnings", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageSucceeded, v1alpha1.ReasonSucceededWithWarnings)}},
			[]event{{Type: "Warning", Reason: EventStageWarnings, Action: "RunStage", Note: "stage a (sha256:ab, 7 bytes): msg", Job: "j-a"}}},
		{"failed and stalled", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageRunning, "Running")}, Conditions: conds(F, F, F, "Running")},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageFailed, "BadInput")}, Conditions: conds(F, T, F, "BadInput")},
			[]event{
				{Type: "Warning", Reason: EventStageFailed, Action: "RunStage", Note: "stage a failed (BadInput): msg", Job: "j-a"},
				{Type: "Warning", Reason: "BadInput", Action: "Stall", Note: "m-BadInput"},
			}},
		{"unschedulable, then waiting for Kueue", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StagePending, "Pending"), stage("b", v1alpha1.StagePending, "Pending")}},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StagePending, "Unschedulable"), stage("b", v1alpha1.StagePending, "AwaitingAdmission")}},
			[]event{
				{Type: "Warning", Reason: "Unschedulable", Action: "ScheduleStage", Note: "stage a: msg", Job: "j-a"},
				{Type: "Normal", Reason: "AwaitingAdmission", Action: "ScheduleStage", Note: "stage b: msg", Job: "j-b"},
			}},
		{"new run: cached stages in one event", v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageSucceeded, ""), stage("b", v1alpha1.StageSucceeded, "")}},
			v1alpha1.CompressionJobStatus{Stages: []v1alpha1.StageStatus{stage("a", v1alpha1.StageCached, "Cached"), stage("b", v1alpha1.StageCached, "Cached")}},
			[]event{{Type: "Normal", Reason: EventStageCached, Action: "ReuseStage",
				Note: "stage a reuses s3://o/k/model.onnx (cache key key-a); stage b reuses s3://o/k/model.onnx (cache key key-b), written by an earlier run"}}},
		{"suspended", v1alpha1.CompressionJobStatus{Conditions: conds(F, F, F, "Running")}, v1alpha1.CompressionJobStatus{Conditions: conds(F, F, T, "Suspended")},
			[]event{{Type: "Normal", Reason: "Suspended", Action: "Suspend", Note: "m-Suspended"}}},
		{"resumed", v1alpha1.CompressionJobStatus{Conditions: conds(F, F, T, "Suspended")}, v1alpha1.CompressionJobStatus{Conditions: conds(F, F, F, "Pending")},
			[]event{{Type: "Normal", Reason: "Resumed", Action: "Resume", Note: "spec.suspend is false: the run goes on"}}},
		{"stalled for another reason", v1alpha1.CompressionJobStatus{Conditions: conds(F, T, F, "SecretNotFound")}, v1alpha1.CompressionJobStatus{Conditions: conds(F, T, F, "DeadlineExceeded")},
			[]event{{Type: "Warning", Reason: "DeadlineExceeded", Action: "Stall", Note: "m-DeadlineExceeded"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, transitionEvents(&tc.old, &tc.cur), cmp.AllowUnexported(event{})); diff != "" {
				t.Errorf("transitionEvents (-want +got):\n%s", diff)
			}
		})
	}
}
