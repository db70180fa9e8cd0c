package pipeline

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Phase is where a whole run is.
type Phase string

const (
	// PhaseInProgress: stages are pending or running.
	PhaseInProgress Phase = "InProgress"
	// PhaseSuspended: spec.suspend holds the run.
	PhaseSuspended Phase = "Suspended"
	// PhaseSucceeded: every stage is done and every quality gate passed.
	PhaseSucceeded Phase = "Succeeded"
	// PhaseFailed: the run cannot go on without a spec change.
	PhaseFailed Phase = "Failed"
)

// Summary is the run-level view of a CompressionJob's stages: what the
// conditions, progress, current stage and output say. The controller and the
// local `kompress run` both compute it with Summarize, so they report a run
// the same way.
type Summary struct {
	Phase        Phase
	Reason       string
	Message      string
	CurrentStage string
	Done, Total  int
	// Output is the last stage's artifact once every stage is done, kept
	// even when a quality gate fails.
	Output *v1alpha1.Artifact
}

// Summarize derives the run's summary from its stages, in order. The first
// failed stage fails the run; the first unfinished one is the current stage;
// when all are done, spec.acceptance decides between Succeeded and
// QualityGateFailed.
func Summarize(spec *v1alpha1.CompressionJobSpec, stages []v1alpha1.StageStatus) Summary {
	sum := Summary{Total: len(spec.Stages)}
	for _, s := range stages {
		if s.State == v1alpha1.StageSucceeded || s.State == v1alpha1.StageCached {
			sum.Done++
		}
	}
	for _, s := range stages {
		switch s.State {
		case v1alpha1.StageSucceeded, v1alpha1.StageCached:
			continue
		case v1alpha1.StageFailed:
			sum.Phase = PhaseFailed
			sum.Reason = SafeReason(s.Reason, v1alpha1.ReasonStageFailed)
			sum.Message = fmt.Sprintf("stage %s failed: %s", s.Name, s.Message)
			sum.CurrentStage = s.Name
			return sum
		}
		sum.CurrentStage = s.Name
		if spec.Suspend {
			sum.Phase = PhaseSuspended
			sum.Reason = v1alpha1.ReasonSuspended
			sum.Message = fmt.Sprintf("suspended at stage %s (%d/%d done)", s.Name, sum.Done, sum.Total)
			return sum
		}
		sum.Phase = PhaseInProgress
		sum.Reason = SafeReason(s.Reason, string(v1alpha1.StagePending))
		sum.Message = s.Message
		if sum.Message == "" {
			sum.Message = fmt.Sprintf("stage %s is %s", s.Name, strings.ToLower(string(s.State)))
		}
		return sum
	}
	if len(stages) == 0 || sum.Done < sum.Total {
		// No stage is unfinished yet not all are done: the stage list is
		// shorter than the spec's. Report it rather than claim success.
		sum.Phase = PhaseInProgress
		sum.Reason = string(v1alpha1.StagePending)
		sum.Message = fmt.Sprintf("%d of %d stages have a status", len(stages), sum.Total)
		return sum
	}
	sum.Output = stages[len(stages)-1].Output.DeepCopy()
	var metrics map[string]string
	if sum.Output != nil {
		metrics = sum.Output.Metrics
	}
	if missed := CheckGates(spec.Acceptance, metrics); len(missed) > 0 {
		sum.Phase = PhaseFailed
		sum.Reason = v1alpha1.ReasonQualityGateFailed
		sum.Message = "the final model missed quality gates: " + strings.Join(missed, "; ")
		return sum
	}
	sum.Phase = PhaseSucceeded
	sum.Reason = v1alpha1.ReasonSucceeded
	sum.Message = fmt.Sprintf("all %d stages done", sum.Total)
	if sum.Output != nil {
		sum.Message += ": " + sum.Output.URI
		if sum.Output.Digest != "" {
			sum.Message += " (" + sum.Output.Digest + ")"
		}
	}
	var warned []string
	for _, s := range stages {
		if len(StageWarnings(s)) > 0 {
			warned = append(warned, s.Name)
		}
	}
	if len(warned) > 0 {
		sum.Message += "; with warnings from stage " + strings.Join(warned, ", ") + " (see status.stages[].message)"
	}
	return sum
}

// Progress is "<stages done>/<stages>".
func (s Summary) Progress() string { return fmt.Sprintf("%d/%d", s.Done, s.Total) }

// Terminal reports whether the run has ended, well or badly.
func (s Summary) Terminal() bool { return s.Phase == PhaseSucceeded || s.Phase == PhaseFailed }

// Apply writes the summary into status: the four kstatus conditions (each
// with observedGeneration), progress, current stage, output and completion
// time. now stamps conditions that change and a run that just ended.
func (s Summary) Apply(st *v1alpha1.CompressionJobStatus, generation int64, now metav1.Time) {
	for _, c := range s.Conditions(generation, now) {
		meta.SetStatusCondition(&st.Conditions, c)
	}
	st.Progress = s.Progress()
	st.CurrentStage = s.CurrentStage
	st.Output = s.Output.DeepCopy()
	switch {
	case !s.Terminal():
		st.CompletionTime = nil
	case st.CompletionTime == nil:
		st.CompletionTime = &now
	}
}

// Conditions are Ready, Reconciling, Stalled and Suspended for the summary,
// with kstatus polarity: Reconciling=True while work is in progress,
// Stalled=True when the run failed, Ready=True only on success.
func (s Summary) Conditions(generation int64, now metav1.Time) []metav1.Condition {
	cond := func(t string, status bool, reason, message string) metav1.Condition {
		c := metav1.Condition{
			Type: t, Status: metav1.ConditionFalse, Reason: reason,
			Message:            Truncate(message, MaxStatusMessage),
			ObservedGeneration: generation, LastTransitionTime: now,
		}
		if status {
			c.Status = metav1.ConditionTrue
		}
		return c
	}
	r, m := s.Reason, s.Message
	return []metav1.Condition{
		cond(v1alpha1.ConditionReady, s.Phase == PhaseSucceeded, r, m),
		cond(v1alpha1.ConditionReconciling, s.Phase == PhaseInProgress, r, m),
		cond(v1alpha1.ConditionStalled, s.Phase == PhaseFailed, r, m),
		cond(v1alpha1.ConditionSuspended, s.Phase == PhaseSuspended, r, m),
	}
}
