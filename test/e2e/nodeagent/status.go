package nodeagent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// The kubelet's limits on termination messages.
const (
	maxTerminationMessage = 4096
	// FallbackToLogsOnError uses at most this much of the log's tail...
	maxLogMessage = 2048
	// ...and at most this many lines.
	maxLogLines = 80
)

// updateStatus applies change to the live pod's status, retrying on
// conflicts; a pod that is gone or was replaced (another UID) is left alone.
func (a *Agent) updateStatus(ctx context.Context, key types.NamespacedName, uid types.UID, change func(*corev1.Pod)) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		pod, err := a.client.CoreV1().Pods(key.Namespace).Get(ctx, key.Name, metav1.GetOptions{})
		if err != nil || pod.UID != uid {
			return ignoreNotFound(err)
		}
		change(pod)
		_, err = a.client.CoreV1().Pods(key.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{})
		return ignoreNotFound(err)
	})
}

// setWaiting reports every container waiting with a reason, as the kubelet
// does for CreateContainerConfigError or ErrImagePull.
func setWaiting(pod *corev1.Pod, reason, message string) {
	pod.Status.Phase = corev1.PodPending
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		})
	}
	now := metav1.Now()
	setCondition(pod, corev1.PodScheduled, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.PodInitialized, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", now)
	setCondition(pod, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", now)
}

// setRunning reports the pod Running with its started containers ready.
func setRunning(pod *corev1.Pod, started map[string]time.Time) {
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	if pod.Status.StartTime == nil {
		pod.Status.StartTime = &now
	}
	pod.Status.HostIP, pod.Status.PodIP = "127.0.0.1", "127.0.0.1"
	pod.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		at, ok := started[c.Name]
		cs := corev1.ContainerStatus{Name: c.Name, Image: c.Image, ImageID: c.Image}
		if ok {
			cs.Ready, cs.Started = true, ptrTo(true)
			cs.ContainerID = "nodeagent://" + string(pod.UID) + "/" + c.Name
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(at)}
		} else {
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, cs)
	}
	ready := corev1.ConditionTrue
	if len(started) < len(pod.Spec.Containers) {
		ready = corev1.ConditionFalse
	}
	setCondition(pod, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.PodScheduled, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.PodInitialized, corev1.ConditionTrue, "", now)
	setCondition(pod, corev1.ContainersReady, ready, "", now)
	setCondition(pod, corev1.PodReady, ready, "", now)
}

// setTerminated reports every container terminated and the pod Succeeded
// when all exited 0, else Failed (restartPolicy Never: nothing restarts).
func setTerminated(pod *corev1.Pod, results map[string]containerResult) {
	now := metav1.Now()
	phase := corev1.PodSucceeded
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		r := results[c.Name]
		if r.exitCode != 0 {
			phase = corev1.PodFailed
		}
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, ImageID: c.Image, Started: ptrTo(false),
			ContainerID: "nodeagent://" + string(pod.UID) + "/" + c.Name,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: r.exitCode, Reason: r.reason, Message: r.message,
				StartedAt: metav1.NewTime(r.started), FinishedAt: metav1.NewTime(r.finished),
				ContainerID: "nodeagent://" + string(pod.UID) + "/" + c.Name,
			}},
		})
	}
	pod.Status.Phase = phase
	if pod.Status.StartTime == nil {
		pod.Status.StartTime = &now
	}
	setCondition(pod, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", now)
	setCondition(pod, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", now)
	setCondition(pod, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", now)
}

func setCondition(pod *corev1.Pod, t corev1.PodConditionType, s corev1.ConditionStatus, reason string, now metav1.Time) {
	for i := range pod.Status.Conditions {
		c := &pod.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != s {
			c.Status, c.LastTransitionTime = s, now
		}
		c.Reason = reason
		return
	}
	pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: s, Reason: reason, LastTransitionTime: now})
}

// terminationMessage is what the kubelet reports for a finished container:
// the termination-message file (at most 4096 bytes) and, with
// FallbackToLogsOnError, the log's tail when the file is empty and the
// container failed.
func terminationMessage(p *proc, exitCode int32) string {
	msg := readLimited(p.termLog, maxTerminationMessage)
	if msg == "" && exitCode != 0 && p.container.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		msg = logTail(p.logPath, maxLogLines, maxLogMessage)
	}
	return msg
}

func readLimited(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n))
	return string(b)
}

// logTail returns the last lines of a log, at most max bytes.
func logTail(path string, lines, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	s := strings.Join(all, "\n")
	if len(s) > max {
		s = s[len(s)-max:]
	}
	return s
}

// residentBytes is a process's resident memory (VmRSS).
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
