package controllers

import (
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// jobCondition returns the Job's condition of type t when it is True.
func jobCondition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func jobComplete(job *batchv1.Job) bool { return jobCondition(job, batchv1.JobComplete) != nil }
func jobFailed(job *batchv1.Job) bool   { return jobCondition(job, batchv1.JobFailed) != nil }
func jobFinished(job *batchv1.Job) bool { return jobComplete(job) || jobFailed(job) }

// podsOf keeps the pods the Job controls (by owner UID), newest first.
// Pods being deleted are kept: a finished pod that TTL or garbage
// collection is deleting still carries its termination message.
func podsOf(job *batchv1.Job, pods []corev1.Pod) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range pods {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == job.UID {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[j].CreationTimestamp.Before(&out[i].CreationTimestamp)
	})
	return out
}

// completionIndexAnnotation is the index of a pod of an Indexed Job.
const completionIndexAnnotation = batchv1.JobCompletionIndexAnnotation

// publisher keeps, of an Indexed Job's pods, those of index 0, the one
// that publishes the stage's result (the others only share partial
// statistics); a Job that is not Indexed has one pod at a time, all kept.
func publisher(job *batchv1.Job, pods []corev1.Pod) []corev1.Pod {
	if !isIndexed(job) {
		return pods
	}
	var out []corev1.Pod
	for _, p := range pods {
		if p.Annotations[completionIndexAnnotation] == "0" {
			out = append(out, p)
		}
	}
	return out
}

// unschedulable returns a pending pod the scheduler cannot place, with
// its condition saying why.
func unschedulable(pods []corev1.Pod) (*corev1.Pod, *corev1.PodCondition, bool) {
	for i := range pods {
		if c := unschedulableCondition(&pods[i]); c != nil {
			return &pods[i], c, true
		}
	}
	return nil, nil, false
}

// unschedulableCondition is a pending pod's PodScheduled=False condition
// of reason Unschedulable, or nil.
func unschedulableCondition(p *corev1.Pod) *corev1.PodCondition {
	if p.Status.Phase != corev1.PodPending {
		return nil
	}
	for i, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// isIndexed reports whether the Job is an Indexed Job.
func isIndexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// indexOf names the index of an Indexed Job's pod (" of index 2 of
// 4"), or nothing for another Job's.
func indexOf(job *batchv1.Job, p *corev1.Pod) string {
	i, ok := p.Annotations[completionIndexAnnotation]
	if !ok || !isIndexed(job) {
		return ""
	}
	return fmt.Sprintf(" of index %s of %d", i, ptr.Deref(job.Spec.Completions, 1))
}

// runnerTermination is the runner container's terminated state, if any.
func runnerTermination(p *corev1.Pod) *corev1.ContainerStateTerminated {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == ContainerName && cs.State.Terminated != nil {
			return cs.State.Terminated
		}
	}
	return nil
}

// jobStage fills the Job-derived fields of a stage status: name, attempts
// (pods started, from Job status) and start time.
func jobStage(s v1alpha1.StageStatus, job *batchv1.Job) v1alpha1.StageStatus {
	s.JobName = job.Name
	s.Attempts = job.Status.Active + job.Status.Succeeded + job.Status.Failed
	if s.StartTime == nil {
		t := job.CreationTimestamp
		s.StartTime = &t
	}
	return s
}

// observeActive is the state of a stage whose Job has not finished: waiting
// for Kueue, suspended, unschedulable, starting or running. A pod the
// scheduler cannot place is reported as Unschedulable, never as Running.
func observeActive(s v1alpha1.StageStatus, job *batchv1.Job, pods []corev1.Pod, cpjSuspended bool) v1alpha1.StageStatus {
	s = jobStage(s, job)
	s.CompletionTime = nil
	set := func(state v1alpha1.StageState, reason, msg string) v1alpha1.StageStatus {
		s.State, s.Reason, s.Message = state, reason, pipeline.Truncate(msg, pipeline.MaxStatusMessage)
		return s
	}
	if job.Spec.Suspend != nil && *job.Spec.Suspend {
		switch {
		case cpjSuspended:
			return set(v1alpha1.StageSuspended, v1alpha1.ReasonSuspended, fmt.Sprintf("Job %s is suspended", job.Name))
		case job.Labels[LabelQueueName] != "":
			return set(v1alpha1.StagePending, v1alpha1.ReasonAwaitingAdmission,
				fmt.Sprintf("Job %s waits for Kueue to admit it from queue %s", job.Name, job.Labels[LabelQueueName]))
		default:
			return set(v1alpha1.StagePending, v1alpha1.ReasonPending, fmt.Sprintf("Job %s is being resumed", job.Name))
		}
	}
	var own []corev1.Pod
	for _, p := range podsOf(job, pods) {
		if p.DeletionTimestamp == nil { // a pod being deleted is not what runs the stage
			own = append(own, p)
		}
	}
	if isIndexed(job) {
		// The indices exchange statistics round by round: one that cannot
		// be placed holds up those running, which wait for it.
		if p, c, ok := unschedulable(own); ok {
			return set(v1alpha1.StagePending, v1alpha1.ReasonUnschedulable, fmt.Sprintf("pod %s%s cannot be scheduled: %s; the indices running wait for it (all %d run at once: give the job a Kueue queue, or fewer shards or layers)",
				p.Name, indexOf(job, p), strings.TrimSuffix(c.Message, "."), ptr.Deref(job.Spec.Completions, 1)))
		}
	}
	for i := range own {
		p := &own[i]
		if p.Status.Phase == corev1.PodRunning {
			return set(v1alpha1.StageRunning, v1alpha1.ReasonRunning, fmt.Sprintf("pod %s is running on node %s", p.Name, p.Spec.NodeName))
		}
	}
	for i := range own {
		p := &own[i]
		if p.Status.Phase != corev1.PodPending {
			continue
		}
		if c := unschedulableCondition(p); c != nil {
			return set(v1alpha1.StagePending, v1alpha1.ReasonUnschedulable, fmt.Sprintf("pod %s cannot be scheduled: %s", p.Name, c.Message))
		}
		for _, cs := range p.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
				// ErrImagePull, CreateContainerConfigError...: say so.
				return set(v1alpha1.StagePending, pipeline.SafeReason(w.Reason, v1alpha1.ReasonPending),
					fmt.Sprintf("pod %s: %s", p.Name, w.Message))
			}
		}
		if p.Spec.NodeName != "" {
			return set(v1alpha1.StagePending, v1alpha1.ReasonPending, fmt.Sprintf("pod %s is starting on node %s", p.Name, p.Spec.NodeName))
		}
	}
	if job.Status.Active > 0 && job.Status.Ready != nil && *job.Status.Ready > 0 {
		return set(v1alpha1.StageRunning, v1alpha1.ReasonRunning, fmt.Sprintf("Job %s has a running pod", job.Name))
	}
	return set(v1alpha1.StagePending, v1alpha1.ReasonPending, fmt.Sprintf("Job %s waits for its pod to start", job.Name))
}

// observeFinished is the state of a stage whose Job completed or failed,
// from the Job's conditions and its pods' termination messages. pods must be
// read from the API server, not a cache that may lag the Job.
func observeFinished(s v1alpha1.StageStatus, job *batchv1.Job, pods []corev1.Pod, task pipeline.Task) v1alpha1.StageStatus {
	s = jobStage(s, job)
	own := podsOf(job, pods)
	if c := jobCondition(job, batchv1.JobFailed); c != nil {
		s.CompletionTime = ptrTime(c.LastTransitionTime)
		return failedStage(s, job, c, own)
	}
	s.CompletionTime = job.Status.CompletionTime
	if s.CompletionTime == nil {
		s.CompletionTime = ptrTime(jobCondition(job, batchv1.JobComplete).LastTransitionTime)
	}
	own = publisher(job, own)
	for i := range own {
		p := &own[i]
		term := runnerTermination(p)
		if p.Status.Phase != corev1.PodSucceeded || term == nil {
			continue
		}
		if len(term.Message) > pipeline.MaxTerminationMessage {
			s.State, s.Reason = v1alpha1.StageFailed, v1alpha1.ReasonInvalidResult
			s.Message = fmt.Sprintf("pod %s of stage %s ended with a %d-byte termination message, over the %d-byte limit of a result",
				p.Name, task.Stage.Name, len(term.Message), pipeline.MaxTerminationMessage)
			return s
		}
		r, err := pipeline.DecodeResult([]byte(term.Message))
		if err != nil {
			s.State, s.Reason = v1alpha1.StageFailed, v1alpha1.ReasonInvalidResult
			s.Message = pipeline.Truncate(fmt.Sprintf("pod %s of stage %s ended with a termination message that is not a result: %v",
				p.Name, task.Stage.Name, err), pipeline.MaxStatusMessage)
			return s
		}
		return pipeline.StageStatusFromResult(s, task, r)
	}
	if job.DeletionTimestamp != nil {
		// TTL (ttlSecondsAfterFinished: 0) or garbage collection took the
		// pods before their result was read. As when the Job is already
		// gone, the stage runs again, and its runner finds the result.json
		// it wrote and reuses it.
		s.State, s.Reason, s.CompletionTime = v1alpha1.StagePending, v1alpha1.ReasonPending, nil
		s.Message = fmt.Sprintf("Job %s completed but was deleted before its result was read; it runs again and reuses the artifact it wrote", job.Name)
		return s
	}
	s.State, s.Reason = v1alpha1.StageFailed, v1alpha1.ReasonInvalidResult
	s.Message = fmt.Sprintf("Job %s completed but none of its pods left a result in its termination message "+
		"(pods gone before the controller read them? raise spec.ttlSecondsAfterFinished)", job.Name)
	return s
}

// failedStage maps the Job's Failed condition to a stage failure: the Job's
// reason (BackoffLimitExceeded, DeadlineExceeded), or for PodFailurePolicy
// the runner's reason for its permanent exit code; the message carries the
// runner's own words from the latest failed pod.
func failedStage(s v1alpha1.StageStatus, job *batchv1.Job, c *batchv1.JobCondition, pods []corev1.Pod) v1alpha1.StageStatus {
	s.State = v1alpha1.StageFailed
	s.Reason = pipeline.SafeReason(c.Reason, v1alpha1.ReasonStageFailed)
	msg := c.Message
	if msg == "" {
		msg = fmt.Sprintf("Job %s failed", job.Name)
	}
	for i := range pods {
		term := runnerTermination(&pods[i])
		if pods[i].Status.Phase != corev1.PodFailed || term == nil {
			continue
		}
		if c.Reason == batchv1.JobReasonPodFailurePolicy {
			// The runner's own reason is the more precise one (and the one
			// `kompress run` reports); the exit code's is the fallback.
			s.Reason = pipeline.ExitReason(term.ExitCode)
			if r, ok := failureResult(term.Message); ok && r.Reason != "" {
				s.Reason = pipeline.SafeReason(r.Reason, s.Reason)
			}
		}
		runner := "runner" + indexOf(job, &pods[i])
		if rm := runnerMessage(term.Message); rm != "" {
			msg = fmt.Sprintf("%s; %s exited with code %d: %s", msg, runner, term.ExitCode, rm)
		} else {
			msg = fmt.Sprintf("%s; %s exited with code %d", msg, runner, term.ExitCode)
		}
		break
	}
	if f := job.Status.FailedIndexes; f != nil && *f != "" {
		msg = fmt.Sprintf("%s (failed indexes: %s)", msg, *f)
	}
	s.Message = pipeline.Truncate(msg, pipeline.MaxStatusMessage)
	return s
}

// failureResult decodes a failed container's termination message as a
// result of the task/result contract. With terminationMessagePolicy
// FallbackToLogsOnError, a container that died before writing one (killed,
// or a panic nothing recovered) leaves the tail of its log instead; a log
// line that happens to be JSON (a Custom image's structured log) is not a
// result, whatever its fields: only the contract's version says so.
func failureResult(term string) (pipeline.Result, bool) {
	r, err := pipeline.DecodeResult([]byte(term))
	return r, err == nil && r.Version == pipeline.ContractVersion
}

// runnerMessage extracts the runner's explanation from a termination
// message: the message of a failure result, or the raw text (the kubelet's
// tail of the log) when the runner died before writing one.
func runnerMessage(term string) string {
	if term == "" {
		return ""
	}
	if r, ok := failureResult(term); ok && (r.Message != "" || r.Reason != "") {
		if r.Reason != "" && r.Message != "" {
			return r.Reason + ": " + r.Message
		}
		return r.Reason + r.Message
	}
	return pipeline.Truncate(term, pipeline.MaxStatusMessage/2)
}

func ptrTime(t metav1.Time) *metav1.Time { return &t }

// imagePullReasons are the kubelet's waiting reasons of a container whose
// image cannot be had; it keeps retrying (with back-off) for ever.
var imagePullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true,
	"ErrImageNeverPull": true, "RegistryUnavailable": true,
}

// imagePullFailingSince is when the Job's pod that cannot pull its image
// was bound to its node (the kubelet has been trying since about then),
// if the Job has such a pod.
func imagePullFailingSince(job *batchv1.Job, pods []corev1.Pod) (time.Time, bool) {
	for _, p := range podsOf(job, pods) {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodPending {
			continue
		}
		for _, cs := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			if cs.State.Waiting == nil || !imagePullReasons[cs.State.Waiting.Reason] {
				continue
			}
			since := p.CreationTimestamp.Time
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue {
					since = c.LastTransitionTime.Time
				}
			}
			return since, true
		}
	}
	return time.Time{}, false
}
