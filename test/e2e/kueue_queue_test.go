//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// The queue objects of a Kueue test: a ResourceFlavor and a ClusterQueue
// named after the test's namespace (which alone may use it), and a
// LocalQueue in that namespace. The ClusterQueue covers every resource a
// stage pod requests (the chart's defaults: cpu 1, memory 1Gi,
// ephemeral-storage 256Mi): Kueue does not admit a workload that requests
// a resource its ClusterQueue does not cover. Memory and storage quotas
// are ample; the CPU quota is what the tests vary.
const localQueue = "stages"

const queueObjects = `apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: %[1]s}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: %[1]s}
spec:
  namespaceSelector:
    matchLabels: {kubernetes.io/metadata.name: %[1]s}
  resourceGroups:
  - coveredResources: [cpu, memory, ephemeral-storage]
    flavors:
    - name: %[1]s
      resources:
      - {name: cpu, nominalQuota: "%[2]s"}
      - {name: memory, nominalQuota: 64Gi}
      - {name: ephemeral-storage, nominalQuota: 64Gi}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: %[3]s, namespace: %[1]s}
spec: {clusterQueue: %[1]s}
`

// applyQueue creates or updates the namespace's queue objects with a CPU
// quota of cpu (server-side apply, as kubectl apply --server-side would).
func applyQueue(t *testing.T, ns, cpu string) {
	t.Helper()
	for _, doc := range strings.Split(fmt.Sprintf(queueObjects, ns, cpu, localQueue), "\n---\n") {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := cl.client.Patch(context.Background(), u, client.Apply, client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
			t.Fatalf("applying Kueue %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// workload is the part of a Kueue Workload (v1beta2) the tests read.
type workload struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		QueueName string `json:"queueName"`
		PodSets   []struct {
			Name  string `json:"name"`
			Count int32  `json:"count"`
		} `json:"podSets"`
	} `json:"spec"`
	Status struct {
		Conditions []metav1.Condition `json:"conditions"`
		Admission  *struct {
			ClusterQueue      string `json:"clusterQueue"`
			PodSetAssignments []struct {
				Name  string `json:"name"`
				Count *int32 `json:"count"`
			} `json:"podSetAssignments"`
		} `json:"admission"`
	} `json:"status"`
}

// job is the name of the Job the Workload stands for (Kueue makes the Job
// its owner).
func (w *workload) job() string {
	for _, o := range w.OwnerReferences {
		if o.Kind == "Job" {
			return o.Name
		}
	}
	return ""
}

func (w *workload) condition(t string) *metav1.Condition {
	return meta.FindStatusCondition(w.Status.Conditions, t)
}

// admittedAt is when Kueue admitted the Workload; zero if it has not.
func (w *workload) admittedAt() time.Time {
	if c := w.condition("Admitted"); c != nil && c.Status == metav1.ConditionTrue {
		return c.LastTransitionTime.Time
	}
	return time.Time{}
}

// admittedPods is the number of pods the admission covers.
func (w *workload) admittedPods() int32 {
	var n int32
	if w.Status.Admission != nil {
		for _, a := range w.Status.Admission.PodSetAssignments {
			if a.Count != nil {
				n += *a.Count
			}
		}
	}
	return n
}

func (w *workload) String() string {
	var conds []string
	for _, c := range w.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s(%s: %s)", c.Type, c.Status, c.Reason, c.Message))
	}
	return fmt.Sprintf("Workload %s of Job %s, %d pods admitted, %v", w.Name, w.job(), w.admittedPods(), conds)
}

// workloads maps Job name to its Workload, in the namespace.
func workloads(t *testing.T, ns string) map[string]*workload {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("kueue.x-k8s.io/v1beta2")
	list.SetKind("WorkloadList")
	if err := cl.client.List(context.Background(), list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := map[string]*workload{}
	for _, u := range list.Items {
		b, err := json.Marshal(u.Object)
		if err != nil {
			t.Fatal(err)
		}
		w := &workload{}
		if err := json.Unmarshal(b, w); err != nil {
			t.Fatalf("Workload %s: %v", u.GetName(), err)
		}
		out[w.job()] = w
	}
	return out
}

// waitPending waits until Kueue has looked at the Job's Workload and left
// it waiting for quota (QuotaReserved False), and returns it.
func waitPending(t *testing.T, ns, jobName string) *workload {
	t.Helper()
	var got *workload
	eventually(t, time.Minute, "Kueue to find no quota for Job "+jobName, func() (bool, string) {
		got = workloads(t, ns)[jobName]
		if got == nil {
			return false, "no Workload"
		}
		c := got.condition("QuotaReserved")
		return c != nil && c.Status == metav1.ConditionFalse, got.String()
	})
	return got
}

// heldFor checks, for d, that the CompressionJob's stage Job stays
// suspended and has no pod: what waiting for Kueue must look like.
func heldFor(t *testing.T, ns, name, job string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		var j batchv1.Job
		if err := cl.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: job}, &j); err != nil {
			t.Fatal(err)
		}
		if j.Spec.Suspend == nil || !*j.Spec.Suspend {
			t.Fatalf("Job %s is not suspended while its Workload waits for quota", job)
		}
		for _, p := range podsOf(t, ns, name) {
			if p.Labels["batch.kubernetes.io/job-name"] == job {
				t.Fatalf("pod %s of Job %s exists while its Workload waits for quota", p.Name, job)
			}
		}
	}
}

// resumedAt is when the Job controller saw the Job unsuspended (its
// Suspended condition turned False); zero if the Job was never suspended.
func resumedAt(j *batchv1.Job) time.Time {
	for _, c := range j.Status.Conditions {
		if c.Type == batchv1.JobSuspended && c.Status == "False" {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}
