package controllers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/test/controlplane"
)

// TestFullControlPlane runs the controller against a real scheduler and Job
// controller with an "edge" node pool: a stage pod lands only on an edge
// node, runs to success (the test plays the kubelet), and a stage asking
// for more memory than any node has shows the scheduler's message.
func TestFullControlPlane(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a full control plane; skipped with -short")
	}
	e, err := startEnv(controlplane.Options{CRDDirectoryPaths: []string{crdDir()}, Scheduler: true, ControllerManager: true}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	ctx := context.Background()
	edgeTaint := corev1.Taint{Key: "pool", Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	small := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")}
	big := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16"), corev1.ResourceMemory: resource.MustParse("32Gi")}
	for _, p := range []controlplane.NodePool{
		{Name: "edge", Count: 2, Labels: map[string]string{"pool": "edge", "kompress.dev/pool": "compress"}, Taints: []corev1.Taint{edgeTaint}, Capacity: small},
		{Name: "general", Count: 2, Labels: map[string]string{"pool": "general", "kompress.dev/pool": "compress"}, Capacity: big},
	} {
		if _, err := controlplane.AddNodePool(ctx, e.client, p); err != nil {
			t.Fatal(err)
		}
	}
	ns := e.namespace(t)
	edge := &v1alpha1.SchedulingSpec{
		NodeSelector: map[string]string{"pool": "edge"},
		Tolerations:  []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}},
	}

	cpj := newCPJ(ns, "on-edge", quantizeStage("int8"))
	cpj.Spec.Scheduling = edge
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	pod := waitBoundPod(t, e, ns, job.Name)
	if !strings.HasPrefix(pod.Spec.NodeName, "edge-") {
		t.Fatalf("stage pod bound to %s, want a node of the edge pool", pod.Spec.NodeName)
	}
	if err := controlplane.SetPodRunning(ctx, e.client, pod); err != nil {
		t.Fatal(err)
	}
	e.waitCPJ(t, key, "Running on the edge node", func(c *v1alpha1.CompressionJob) bool {
		return stageState(c, 0) == v1alpha1.StageRunning && strings.Contains(c.Status.Stages[0].Message, pod.Spec.NodeName)
	})
	r := resultFor(taskOf(t, &job), map[string]string{pipeline.MetricLatencyP95Ms: "3.2"})
	if err := controlplane.SetPodTerminated(ctx, e.client, pod, 0, termMessage(t, r)); err != nil {
		t.Fatal(err)
	}
	// The real Job controller completes the Job; the result comes back.
	done := e.waitCPJ(t, key, "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
	if done.Status.Output == nil || done.Status.Output.Digest != r.Output.Digest {
		t.Errorf("status.output %+v, want digest %s", done.Status.Output, r.Output.Digest)
	}

	huge := newCPJ(ns, "too-big", quantizeStage("int8"))
	huge.Spec.Scheduling = edge.DeepCopy()
	huge.Spec.Stages[0].Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Gi")}}
	e.create(t, huge)
	got := e.waitCPJ(t, client.ObjectKeyFromObject(huge), "Unschedulable", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionFalse, v1alpha1.ReasonUnschedulable)
	})
	msg := cond(got, v1alpha1.ConditionReady).Message
	if !strings.Contains(msg, "0/4 nodes are available") || !strings.Contains(msg, "Insufficient memory") {
		t.Errorf("Ready message %q: want the scheduler's 0/4 nodes ... Insufficient memory", msg)
	}
	if s := got.Status.Stages[0]; s.State != v1alpha1.StagePending || s.Reason != v1alpha1.ReasonUnschedulable {
		t.Errorf("stage %s/%s, want Pending/Unschedulable", s.State, s.Reason)
	}
	if err := e.cp.Exited(); err != nil {
		t.Fatal(err)
	}
}

func waitBoundPod(t *testing.T, e *env, ns, jobName string) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := e.client.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": jobName}); err != nil {
			return false, err
		}
		for i := range pods.Items {
			if pods.Items[i].Spec.NodeName != "" {
				pod = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pod of Job %s was bound to a node: %v", jobName, err)
	}
	return pod
}
