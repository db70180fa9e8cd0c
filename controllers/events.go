package controllers

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

// Event reasons that are not condition or stage reasons.
const (
	EventStageStarted   = "StageStarted"
	EventStageRunning   = "StageRunning"
	EventStageSucceeded = "StageSucceeded"
	EventStageCached    = "StageCached"
	EventStageFailed    = "StageFailed"
	EventJobSuspended   = "JobSuspended"
	EventJobResumed     = "JobResumed"
	EventJobDeleted     = "JobDeleted"

	// EventStageWarnings: a stage wrote its model but fell short of what
	// it was asked; the note carries the runner's warnings.
	EventStageWarnings = "StageSucceededWithWarnings"
)

// event is one Kubernetes event to emit. Job names the stage Job it is
// about, if any: events.k8s.io folds events with the same regarding object,
// reason and related object into one series (keeping the first note), so
// events about different stages must name different Jobs.
type event struct {
	Type, Reason, Action, Note string
	Job                        string
}

// transitionEvents compares two statuses and returns an event for every
// transition: each stage that started running, succeeded, was cached,
// failed, became unschedulable or began waiting for Kueue, and the run that
// succeeded, stalled, was suspended or resumed. Comparing statuses rather
// than acting on the spot keeps events to one per transition however often
// the object is reconciled.
func transitionEvents(old, cur *v1alpha1.CompressionJobStatus) []event {
	var evs []event
	var cached []string
	for _, s := range cur.Stages {
		prev := findStage(old.Stages, s.Name)
		if prev != nil && prev.State == s.State && prev.Reason == s.Reason && prev.CacheKey == s.CacheKey {
			continue
		}
		if s.State == v1alpha1.StageCached && s.Output != nil {
			cached = append(cached, fmt.Sprintf("stage %s reuses %s (cache key %s)", s.Name, s.Output.URI, short(s.CacheKey)))
			continue
		}
		if e, ok := stageEvent(s); ok {
			e.Job = s.JobName
			evs = append(evs, e)
		}
	}
	if len(cached) > 0 {
		// Stages cached together have no Job to tell their events apart:
		// one event lists them all.
		evs = append(evs, event{Type: corev1.EventTypeNormal, Reason: EventStageCached, Action: "ReuseStage",
			Note: strings.Join(cached, "; ") + ", written by an earlier run"})
	}
	evs = append(evs, conditionEvents(old.Conditions, cur.Conditions)...)
	return evs
}

func stageEvent(s v1alpha1.StageStatus) (event, bool) {
	switch {
	case s.State == v1alpha1.StageRunning:
		return event{Type: corev1.EventTypeNormal, Reason: EventStageRunning, Action: "RunStage", Note: fmt.Sprintf("stage %s is running: %s", s.Name, s.Message)}, true
	case s.State == v1alpha1.StageSucceeded && s.Output != nil && s.Reason == v1alpha1.ReasonSucceededWithWarnings:
		return event{Type: corev1.EventTypeWarning, Reason: EventStageWarnings, Action: "RunStage",
			Note: fmt.Sprintf("stage %s (%s, %d bytes): %s", s.Name, s.Output.Digest, s.Output.SizeBytes, s.Message)}, true
	case s.State == v1alpha1.StageSucceeded && s.Output != nil:
		return event{Type: corev1.EventTypeNormal, Reason: EventStageSucceeded, Action: "RunStage",
			Note: fmt.Sprintf("stage %s wrote %s (%s, %d bytes)", s.Name, s.Output.URI, s.Output.Digest, s.Output.SizeBytes)}, true
	case s.State == v1alpha1.StageFailed:
		return event{Type: corev1.EventTypeWarning, Reason: EventStageFailed, Action: "RunStage", Note: fmt.Sprintf("stage %s failed (%s): %s", s.Name, s.Reason, s.Message)}, true
	case s.Reason == v1alpha1.ReasonUnschedulable:
		return event{Type: corev1.EventTypeWarning, Reason: v1alpha1.ReasonUnschedulable, Action: "ScheduleStage", Note: fmt.Sprintf("stage %s: %s", s.Name, s.Message)}, true
	case s.Reason == v1alpha1.ReasonAwaitingAdmission:
		return event{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonAwaitingAdmission, Action: "ScheduleStage", Note: fmt.Sprintf("stage %s: %s", s.Name, s.Message)}, true
	}
	return event{}, false
}

func conditionEvents(old, cur []metav1.Condition) []event {
	became := func(t string, status metav1.ConditionStatus) *metav1.Condition {
		c := meta.FindStatusCondition(cur, t)
		if c == nil || c.Status != status {
			return nil
		}
		if o := meta.FindStatusCondition(old, t); o != nil && o.Status == status && o.Reason == c.Reason {
			return nil
		}
		return c
	}
	var evs []event
	if c := became(v1alpha1.ConditionReady, metav1.ConditionTrue); c != nil {
		evs = append(evs, event{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonSucceeded, Action: "Complete", Note: c.Message})
	}
	if c := became(v1alpha1.ConditionStalled, metav1.ConditionTrue); c != nil {
		evs = append(evs, event{Type: corev1.EventTypeWarning, Reason: c.Reason, Action: "Stall", Note: c.Message})
	}
	if c := became(v1alpha1.ConditionSuspended, metav1.ConditionTrue); c != nil {
		evs = append(evs, event{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonSuspended, Action: "Suspend", Note: c.Message})
	}
	if o := meta.FindStatusCondition(old, v1alpha1.ConditionSuspended); o != nil && o.Status == metav1.ConditionTrue {
		if c := meta.FindStatusCondition(cur, v1alpha1.ConditionSuspended); c != nil && c.Status == metav1.ConditionFalse {
			evs = append(evs, event{Type: corev1.EventTypeNormal, Reason: v1alpha1.ReasonResumed, Action: "Resume", Note: "spec.suspend is false: the run goes on"})
		}
	}
	return evs
}

func findStage(stages []v1alpha1.StageStatus, name string) *v1alpha1.StageStatus {
	for i := range stages {
		if stages[i].Name == name {
			return &stages[i]
		}
	}
	return nil
}

func short(key string) string {
	if len(key) > 12 {
		return key[:12]
	}
	return key
}
