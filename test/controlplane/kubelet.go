package controlplane

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The functions below play the kubelet for pods on Nodes that have none:
// they write the pod status a kubelet would.

// SetPodRunning marks a bound pod's containers started and the pod Running.
func SetPodRunning(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	if pod.Spec.NodeName == "" {
		return fmt.Errorf("pod %s/%s is not bound to a node: a kubelet would not run it", pod.Namespace, pod.Name)
	}
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.StartTime = &now
	pod.Status.ContainerStatuses = nil
	for _, ctr := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Ready: true, Started: ptrTo(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	setPodConditions(pod, corev1.ConditionTrue, now)
	return c.Status().Update(ctx, pod)
}

// SetPodTerminated ends every container of a bound pod with exitCode and
// the termination message (what the container wrote to its termination
// message path), and the pod Succeeded (exit 0) or Failed.
func SetPodTerminated(ctx context.Context, c client.Client, pod *corev1.Pod, exitCode int32, message string) error {
	if pod.Spec.NodeName == "" {
		return fmt.Errorf("pod %s/%s is not bound to a node: a kubelet would not run it", pod.Namespace, pod.Name)
	}
	now := metav1.Now()
	phase, reason := corev1.PodSucceeded, "Completed"
	if exitCode != 0 {
		phase, reason = corev1.PodFailed, "Error"
	}
	started := now
	if pod.Status.StartTime != nil {
		started = *pod.Status.StartTime
	} else {
		pod.Status.StartTime = &now
	}
	pod.Status.Phase = phase
	pod.Status.ContainerStatuses = nil
	for _, ctr := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ctr.Name, Image: ctr.Image, ImageID: ctr.Image, Started: ptrTo(false),
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: exitCode, Reason: reason, Message: message, StartedAt: started, FinishedAt: now,
			}},
		})
	}
	setPodConditions(pod, corev1.ConditionFalse, now)
	return c.Status().Update(ctx, pod)
}

// ForceDeletePod removes a pod at once, as a kubelet confirming its
// containers stopped would: without one, a deleted bound pod stays
// Terminating.
func ForceDeletePod(ctx context.Context, c client.Client, pod *corev1.Pod) error {
	return client.IgnoreNotFound(c.Delete(ctx, pod, client.GracePeriodSeconds(0)))
}

func setPodConditions(pod *corev1.Pod, ready corev1.ConditionStatus, now metav1.Time) {
	set := func(t corev1.PodConditionType, s corev1.ConditionStatus) {
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == t {
				if pod.Status.Conditions[i].Status != s {
					pod.Status.Conditions[i].Status, pod.Status.Conditions[i].LastTransitionTime = s, now
				}
				return
			}
		}
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now})
	}
	set(corev1.PodScheduled, corev1.ConditionTrue)
	set(corev1.PodInitialized, corev1.ConditionTrue)
	set(corev1.ContainersReady, ready)
	set(corev1.PodReady, ready)
}

func ptrTo[T any](v T) *T { return &v }
