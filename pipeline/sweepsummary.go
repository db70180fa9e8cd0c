package pipeline

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
)

// SweepSummary is the run-level view of a sweep: the summary the
// conditions say, every variant's status and the selection.
type SweepSummary struct {
	Summary
	Variants  []v1alpha1.VariantStatus
	Selection *v1alpha1.SelectionStatus
	// Select is the select step's task, once every variant has finished
	// and one has a model; nil before (and when none has one).
	Select *Task
}

func done(s v1alpha1.StageState) bool {
	return s == v1alpha1.StageSucceeded || s == v1alpha1.StageCached
}

// VariantStatuses derives every variant's status from its runs: a failed
// run fails it; a model that misses spec.acceptance fails it with reason
// QualityGateFailed (the model is kept in its output).
func VariantStatuses(spec *v1alpha1.CompressionJobSpec, sw *Sweep, runs []v1alpha1.StageStatus) []v1alpha1.VariantStatus {
	out := make([]v1alpha1.VariantStatus, len(sw.Variants))
	for v, vr := range sw.Variants {
		vs := v1alpha1.VariantStatus{Name: vr.Name, Parameters: vr.Parameters(sw.Params), Stages: sw.VariantStages(v), Phase: v1alpha1.VariantPending}
		all := true
		for _, r := range sw.Chains[v] {
			s := runs[r]
			switch {
			case s.State == v1alpha1.StageFailed:
				vs.Phase, vs.Reason = v1alpha1.VariantFailed, SafeReason(s.Reason, v1alpha1.ReasonStageFailed)
				vs.Message = Truncate(fmt.Sprintf("stage %s failed: %s", s.Name, s.Message), MaxStatusMessage)
			case s.State == v1alpha1.StageRunning && vs.Phase == v1alpha1.VariantPending:
				vs.Phase = v1alpha1.VariantRunning
			case s.State == v1alpha1.StageSuspended && vs.Phase == v1alpha1.VariantPending:
				vs.Phase = v1alpha1.VariantSuspended
			}
			if vs.Phase == v1alpha1.VariantFailed {
				break
			}
			all = all && done(s.State)
		}
		if vs.Phase == v1alpha1.VariantPending && spec.Suspend && !all {
			vs.Phase = v1alpha1.VariantSuspended
		}
		if vs.Phase != v1alpha1.VariantFailed && all {
			final := runs[sw.Final(v)]
			vs.Output = final.Output.DeepCopy()
			var metrics map[string]string
			if vs.Output != nil {
				metrics = vs.Output.Metrics
			}
			missed := CheckGates(spec.Acceptance, metrics)
			vs.Passed = ptr.To(len(missed) == 0)
			vs.Phase = v1alpha1.VariantSucceeded
			if len(missed) > 0 {
				vs.Phase, vs.Reason = v1alpha1.VariantFailed, v1alpha1.ReasonQualityGateFailed
				vs.Message = Truncate("missed quality gates: "+strings.Join(missed, "; "), MaxStatusMessage)
			}
		}
		out[v] = vs
	}
	return out
}

// variantDone reports whether a variant will not change any more.
func variantDone(vs v1alpha1.VariantStatus) bool {
	return vs.Phase == v1alpha1.VariantSucceeded || vs.Phase == v1alpha1.VariantFailed
}

// SummarizeSweep derives a sweep's summary from its runs (one status per
// run of sw, in order) and its select step (nil before it exists). While
// variants run, the most telling unfinished run speaks for the sweep (a
// pod that cannot be scheduled before one that runs); once all are done,
// the select step runs, and the sweep is Ready when its selection passed
// spec.acceptance, Stalled with QualityGateFailed (the best model kept in
// status.output) when none did, and Stalled with the first failure's
// reason when no variant produced a model.
func SummarizeSweep(jobName string, spec *v1alpha1.CompressionJobSpec, sw *Sweep, runs []v1alpha1.StageStatus, sel *v1alpha1.StageStatus, runnerVersion string) SweepSummary {
	sum := SweepSummary{Variants: VariantStatuses(spec, sw, runs)}
	// Progress counts the runs that will not change any more: done,
	// failed, or left out because every variant through them failed.
	sum.Total = len(sw.Runs) + 1
	for r, s := range runs {
		if done(s.State) || s.State == v1alpha1.StageFailed || !sum.anyAlive(sw.Runs[r].Variants) {
			sum.Done++
		}
	}
	if sel != nil && (done(sel.State) || sel.State == v1alpha1.StageFailed) {
		sum.Done++
	}
	finished := 0
	for _, vs := range sum.Variants {
		if variantDone(vs) {
			finished++
		}
	}
	if finished < len(sum.Variants) {
		sum.unfinished(spec, sw, runs, finished)
		return sum
	}

	names := make([]string, len(sw.Variants))
	outputs := make([]*v1alpha1.Artifact, len(sw.Variants))
	fails := make([][2]string, len(sw.Variants))
	for v, vs := range sum.Variants {
		names[v], outputs[v] = vs.Name, vs.Output
		if vs.Output == nil {
			fails[v] = [2]string{vs.Reason, vs.Message}
		}
	}
	best, passed := Select(sw.Policy, Candidates(spec.Acceptance, names, outputs))
	if best < 0 {
		sum.Phase, sum.Reason = PhaseFailed, v1alpha1.ReasonStageFailed
		var msgs []string
		for _, vs := range sum.Variants {
			if sum.Reason == v1alpha1.ReasonStageFailed && vs.Reason != "" {
				sum.Reason = vs.Reason
			}
			msgs = append(msgs, vs.Name+": "+vs.Message)
		}
		sum.Message = Truncate("no variant produced a model: "+strings.Join(msgs, "; "), MaxStatusMessage)
		for _, r := range runs {
			if r.State == v1alpha1.StageFailed {
				sum.CurrentStage = r.Name
				break
			}
		}
		return sum
	}
	task, err := NewSelectTask(jobName, spec, sw, outputs, fails, runnerVersion)
	sum.Selection = &v1alpha1.SelectionStatus{Policy: sw.Policy}
	if err != nil {
		sum.Phase, sum.Reason, sum.Message = PhaseFailed, v1alpha1.ReasonBadInput, Truncate("planning the select step: "+err.Error(), MaxStatusMessage)
		return sum
	}
	sum.Select = &task
	sum.CurrentStage = SelectStep
	switch {
	case sel == nil || !done(sel.State) && sel.State != v1alpha1.StageFailed:
		sum.Phase = PhaseInProgress
		if spec.Suspend {
			sum.Phase = PhaseSuspended
		}
		sum.Reason, sum.Message = string(v1alpha1.StagePending), fmt.Sprintf("selecting the %s of %d variants", sw.Policy, len(sw.Variants))
		if sel != nil {
			sum.Reason = SafeReason(sel.Reason, sum.Reason)
			if sel.Message != "" {
				sum.Message += ": " + sel.Message
			}
		}
		if spec.Suspend {
			sum.Reason = v1alpha1.ReasonSuspended
		}
		return sum
	case sel.State == v1alpha1.StageFailed:
		sum.Phase, sum.Reason = PhaseFailed, SafeReason(sel.Reason, v1alpha1.ReasonStageFailed)
		sum.Message = "the select step failed: " + sel.Message
		return sum
	}
	chosen := sum.Variants[best]
	if sel.Output == nil || chosen.Output == nil || sel.Output.URI != chosen.Output.URI || sel.Output.Digest != chosen.Output.Digest {
		sum.Phase, sum.Reason = PhaseFailed, v1alpha1.ReasonInvalidResult
		got := "no model"
		if sel.Output != nil {
			got = sel.Output.URI
		}
		sum.Message = fmt.Sprintf("the select step chose %s, but %s by %s is %s", got, sw.Policy, "the variants' status", chosen.Name)
		return sum
	}
	sum.CurrentStage = ""
	sum.Output = chosen.Output.DeepCopy()
	sum.Selection.Variant, sum.Selection.Passed = chosen.Name, ptr.To(passed)
	sum.Selection.Release, sum.Selection.Report = task.OutputURI, task.ReportURI()
	desc := sw.Variants[best].Describe(sw.Params)
	if !passed {
		sum.Phase, sum.Reason = PhaseFailed, v1alpha1.ReasonQualityGateFailed
		var msgs []string
		for _, vs := range sum.Variants {
			msgs = append(msgs, vs.Name+": "+strings.TrimPrefix(vs.Message, "missed quality gates: "))
		}
		sum.Message = fmt.Sprintf("no variant passed spec.acceptance (%s); kept the %s, %s (%s): %s",
			strings.Join(msgs, "; "), sw.Policy, chosen.Name, desc, chosen.Output.URI)
		return sum
	}
	npass := 0
	for _, vs := range sum.Variants {
		if vs.Passed != nil && *vs.Passed {
			npass++
		}
	}
	sum.Phase, sum.Reason = PhaseSucceeded, v1alpha1.ReasonSucceeded
	sum.Message = fmt.Sprintf("selected %s (%s), the %s of the %d of %d variants that passed: %s (%s)",
		chosen.Name, desc, sw.Policy, npass, len(sw.Variants), chosen.Output.URI, chosen.Output.Digest)
	return sum
}

// unfinished fills the summary of a sweep whose variants are not all done.
func (sum *SweepSummary) unfinished(spec *v1alpha1.CompressionJobSpec, sw *Sweep, runs []v1alpha1.StageStatus, finished int) {
	pick := -1
	for r, s := range runs {
		if done(s.State) || s.State == v1alpha1.StageFailed || !sum.anyAlive(sw.Runs[r].Variants) {
			continue
		}
		if pick < 0 {
			pick = r
		}
		reason := s.Reason
		if reason != "" && reason != v1alpha1.ReasonRunning && reason != v1alpha1.ReasonPending && reason != v1alpha1.ReasonSuspended {
			pick = r // a problem (Unschedulable, AwaitingAdmission, ErrImagePull...) speaks first
			break
		}
	}
	sum.Phase, sum.Reason = PhaseInProgress, string(v1alpha1.StagePending)
	if spec.Suspend {
		sum.Phase, sum.Reason = PhaseSuspended, v1alpha1.ReasonSuspended
	}
	sum.Message = fmt.Sprintf("%d of %d variants done", finished, len(sw.Variants))
	if pick >= 0 {
		s := runs[pick]
		sum.CurrentStage = s.Name
		if !spec.Suspend {
			sum.Reason = SafeReason(s.Reason, string(v1alpha1.StagePending))
		}
		msg := s.Message
		if msg == "" {
			msg = "stage " + s.Name + " is " + strings.ToLower(string(s.State))
		}
		sum.Message += "; " + msg
	}
}

func (sum *SweepSummary) anyAlive(variants []int) bool {
	for _, v := range variants {
		if !variantDone(sum.Variants[v]) {
			return true
		}
	}
	return false
}

// Apply writes the sweep's summary into status: the conditions, progress,
// current stage, output and completion time (as Summary.Apply), the
// variants and the selection.
func (sum SweepSummary) Apply(st *v1alpha1.CompressionJobStatus, generation int64, now metav1.Time) {
	sum.Summary.Apply(st, generation, now)
	st.Variants = sum.Variants
	st.Selection = sum.Selection
}
