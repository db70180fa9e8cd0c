package pipeline

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/kompress/kompress/api/v1alpha1"
)

// MaxStatusMessage bounds every message copied into status, so a runner's
// long message cannot bloat the object or break the condition's limits.
const MaxStatusMessage = 1024

// ReasonCached is the reason of a stage whose output an earlier run wrote.
const ReasonCached = "Cached"

// conditionReason is the syntax metav1.Condition accepts for a reason.
var conditionReason = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

// StageStatusFromResult is the status of a finished stage given the result
// its runner reported for task t. s carries the fields that do not come from
// the result (name, job name, times, attempts). A result that fails
// Result.Validate fails the stage with reason InvalidResult; a runner-reported
// failure keeps the runner's reason and message.
func StageStatusFromResult(s v1alpha1.StageStatus, t Task, r Result) v1alpha1.StageStatus {
	s.CacheKey, s.ContentKey = t.CacheKey, ""
	s.Output = nil
	if r.Reason != "" {
		s.State = v1alpha1.StageFailed
		s.Reason = SafeReason(r.Reason, v1alpha1.ReasonStageFailed)
		s.Message = Truncate(r.Message, MaxStatusMessage)
		return s
	}
	if err := r.Validate(t); err != nil {
		s.State = v1alpha1.StageFailed
		s.Reason = v1alpha1.ReasonInvalidResult
		s.Message = Truncate(fmt.Sprintf("stage %s returned an invalid result: %v", t.Stage.Name, err), MaxStatusMessage)
		return s
	}
	s.Output = r.Output.DeepCopy()
	s.ContentKey = r.ContentKey
	if t.Select != nil {
		name, _ := SelectedVariant(t, r)
		s.State, s.Reason = v1alpha1.StageSucceeded, v1alpha1.ReasonSucceeded
		if r.Cached {
			s.State, s.Reason = v1alpha1.StageCached, ReasonCached
		}
		s.Message = fmt.Sprintf("selected %s by %s: %s; release %s", name, t.Select.Policy, r.Output.URI, t.OutputURI)
		return s
	}
	if r.Cached {
		s.State = v1alpha1.StageCached
		s.Reason = ReasonCached
		s.Message = Truncate("reused "+r.Output.URI+", written by an earlier run"+warningText(r.Warnings), MaxStatusMessage)
		return s
	}
	s.State = v1alpha1.StageSucceeded
	s.Reason = v1alpha1.ReasonSucceeded
	if len(r.Warnings) > 0 {
		s.Reason = v1alpha1.ReasonSucceededWithWarnings
	}
	s.Message = Truncate("wrote "+r.Output.URI+warningText(r.Warnings), MaxStatusMessage)
	return s
}

// warningMark starts each warning in a stage's message.
const warningMark = "; warning: "

// warningText renders a result's warnings for a stage message.
func warningText(warnings []string) string {
	if len(warnings) == 0 {
		return ""
	}
	return warningMark + strings.Join(Warn(warnings), warningMark)
}

// StageWarnings returns the warnings a stage's status message carries
// (StageStatusFromResult wrote them after what the stage did), as far as
// the message's length kept them.
func StageWarnings(s v1alpha1.StageStatus) []string {
	_, rest, ok := strings.Cut(s.Message, warningMark)
	if !ok || (s.State != v1alpha1.StageSucceeded && s.State != v1alpha1.StageCached) {
		return nil
	}
	return strings.Split(rest, warningMark)
}

// SafeReason returns reason when it is a valid condition reason, else
// fallback: status must never be rejected because a runner made up a word.
func SafeReason(reason, fallback string) string {
	if len(reason) <= 128 && conditionReason.MatchString(reason) {
		return reason
	}
	return fallback
}

// Truncate shortens s to at most n bytes on a rune boundary, marking the cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "..."
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
