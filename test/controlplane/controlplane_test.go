package controlplane_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/test/controlplane"
)

// TestJobRunsOnPool starts the whole control plane, adds two node pools and
// runs a Job whose pod may only land on the tainted "edge" pool; the test
// plays the kubelet and the real Job controller completes the Job.
func TestJobRunsOnPool(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kube-apiserver, etcd, kube-scheduler and kube-controller-manager")
	}
	cp, err := controlplane.Start(controlplane.Options{Scheduler: true, ControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.Scheme})
	if err != nil {
		t.Fatal(err)
	}

	edgeTaint := corev1.Taint{Key: "pool", Value: "edge", Effect: corev1.TaintEffectNoSchedule}
	edge, err := controlplane.AddNodePool(ctx, c, controlplane.NodePool{
		Name: "edge", Count: 2, Labels: map[string]string{"pool": "edge"}, Taints: []corev1.Taint{edgeTaint},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("4Gi")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.AddNodePool(ctx, c, controlplane.NodePool{
		Name: "general", Count: 2, Labels: map[string]string{"pool": "general"},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi")},
	}); err != nil {
		t.Fatal(err)
	}
	var got corev1.Node
	if err := c.Get(ctx, client.ObjectKey{Name: edge[0].Name}, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]corev1.Taint{edgeTaint}, got.Spec.Taints); diff != "" {
		t.Errorf("edge node taints (-want +got):\n%s", diff)
	}

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "on-edge", Namespace: "default"},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr(int32(0)),
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever,
				NodeSelector:  map[string]string{"pool": "edge"},
				Tolerations:   []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}},
				Containers: []corev1.Container{{Name: "main", Image: "example.invalid/none",
					Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("1Gi")}}}},
			}},
		},
	}
	if err := c.Create(ctx, job); err != nil {
		t.Fatal(err)
	}
	pod := waitPod(ctx, t, c, job, func(p *corev1.Pod) bool { return p.Spec.NodeName != "" })
	if !strings.HasPrefix(pod.Spec.NodeName, "edge-") {
		t.Fatalf("pod %s was bound to %s, want a node of the edge pool", pod.Name, pod.Spec.NodeName)
	}
	if err := controlplane.SetPodRunning(ctx, c, pod); err != nil {
		t.Fatal(err)
	}
	if err := controlplane.SetPodTerminated(ctx, c, pod, 0, "done"); err != nil {
		t.Fatal(err)
	}
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return false, err
		}
		return job.Status.Succeeded == 1 && hasCondition(job, batchv1.JobComplete), nil
	})
	if err != nil {
		t.Fatalf("Job did not complete after its pod succeeded: %v; status %+v", err, job.Status)
	}
	if err := cp.Exited(); err != nil {
		t.Fatal(err)
	}
}

// TestAssetsDirNamesTheFix checks that a missing binary is reported with
// the command that builds it.
func TestAssetsDirNamesTheFix(t *testing.T) {
	t.Setenv(controlplane.AssetsEnv, t.TempDir())
	_, err := controlplane.AssetsDir()
	if err == nil || !strings.Contains(err.Error(), "make tools-k8s") || !strings.Contains(err.Error(), "kube-apiserver") {
		t.Fatalf("AssetsDir on an empty folder: got %v, want an error naming kube-apiserver and make tools-k8s", err)
	}
	t.Setenv(controlplane.AssetsEnv, "")
	if _, err := controlplane.AssetsDir(); err == nil || !strings.Contains(err.Error(), controlplane.AssetsEnv+" is not set") {
		t.Fatalf("AssetsDir unset: got %v", err)
	}
}

func waitPod(ctx context.Context, t *testing.T, c client.Client, job *batchv1.Job, ok func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var found *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := c.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
			return false, err
		}
		for i := range pods.Items {
			if ok(&pods.Items[i]) {
				found = &pods.Items[i]
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no pod of Job %s as expected: %v", job.Name, err)
	}
	return found
}

func hasCondition(job *batchv1.Job, t batchv1.JobConditionType) bool {
	for _, c := range job.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }
