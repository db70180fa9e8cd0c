//go:build e2e

package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/test/controlplane"
)

// Stages land only on nodes of the pool the job asks for.
func TestStagesLandOnTheRequestedPool(t *testing.T) {
	const ns = "e2e-placement"
	for _, pool := range []string{"general", "edge"} {
		t.Run(pool, func(t *testing.T) {
			name := "on-" + pool
			rec := record(t, ns, name)
			cpj := quantizeJob(ns, name)
			cpj.Spec.Scheduling.NodeSelector = map[string]string{"pool": pool}
			if pool == "edge" {
				cpj.Spec.Scheduling.Tolerations = []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}}
			}
			apply(t, ns, manifest(t, cpj))
			rec.waitFor(t, 60*time.Second, "Ready", ready)
			pods := podsOf(t, ns, name)
			if len(pods) != 1 {
				t.Fatalf("%d pods, want 1", len(pods))
			}
			if node := pods[0].Spec.NodeName; !strings.HasPrefix(node, pool+"-") {
				t.Errorf("pod %s ran on node %s, outside pool %s", pods[0].Name, node, pool)
			}
			for _, s := range startsIn(ns) {
				if s.Pod == pods[0].Name && !strings.HasPrefix(s.Node, pool+"-") {
					t.Errorf("the agent ran pod %s on node %s", s.Pod, s.Node)
				}
			}
		})
	}
}

// A stage too big for every pool shows Unschedulable with the scheduler's
// message (kstatus InProgress, not Failed: capacity may come), then runs
// once a bigger node joins the pool.
func TestUnschedulableUntilABiggerNode(t *testing.T) {
	t.Parallel()
	const ns, name = "e2e-placement", "too-big"
	rec := record(t, ns, name)
	cpj := quantizeJob(ns, name)
	cpj.Spec.Scheduling.NodeSelector = map[string]string{"pool": "edge"}
	cpj.Spec.Scheduling.Tolerations = []corev1.Toleration{{Key: "pool", Operator: corev1.TolerationOpEqual, Value: "edge", Effect: corev1.TaintEffectNoSchedule}}
	big := resource.MustParse("48Gi")
	cpj.Spec.Scheduling.Resources = &corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: big},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: big},
	}
	apply(t, ns, manifest(t, cpj))
	stuck := rec.waitFor(t, 60*time.Second, "Unschedulable", func(c *v1alpha1.CompressionJob) bool {
		r := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionReady)
		return r != nil && r.Reason == v1alpha1.ReasonUnschedulable
	})
	saveFixture(t, "unschedulable", stuck)
	msg := meta.FindStatusCondition(stuck.Object.Status.Conditions, v1alpha1.ConditionReady).Message
	for _, want := range []string{"cannot be scheduled", "0/5 nodes are available", "Insufficient memory"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Ready message %q does not carry the scheduler's %q", msg, want)
		}
	}
	if stuck.Kstatus != kstatus.InProgressStatus {
		t.Errorf("kstatus while unschedulable = %s, want InProgress", stuck.Kstatus)
	}
	if n := len(startsIn(ns)); n > 2 { // the two pool tests above
		t.Errorf("a runner started for an unschedulable pod")
	}

	// Capacity arrives: a big node in the edge pool.
	if _, err := controlplane.AddNodePool(context.Background(), cl.client, controlplane.NodePool{
		Name: "edge-big", Count: 1, Labels: map[string]string{"pool": "edge"}, Taints: []corev1.Taint{edgeTaint},
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("64Gi")},
	}); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, 90*time.Second, "Ready", ready)
	pods := podsOf(t, ns, name)
	if len(pods) != 1 || pods[0].Spec.NodeName != "edge-big-0" {
		t.Errorf("pods %v, want one on edge-big-0", podNodes(pods))
	}
	if diff := cmp.Diff([]kstatus.Status{kstatus.InProgressStatus, kstatus.CurrentStatus}, rec.kstatuses()); diff != "" {
		t.Errorf("kstatus over the run (-want +got):\n%s", diff)
	}
}

func podNodes(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name+"@"+p.Spec.NodeName)
	}
	return out
}
