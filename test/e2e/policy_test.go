//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

// The chart as installed (its defaults: Custom stages off, no
// ServiceAccount but the runner's) refuses what a CompressionJob user must
// not get: the job stalls before any Job or pod exists, and the condition
// names the field and the setting, as kubectl, kstatus and Argo CD show it.
func TestClusterRefusesWhatItDoesNotRun(t *testing.T) {
	const ns = "e2e-policy"
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.CompressionJob)
		reason string
		msgs   []string
	}{
		{"custom-off", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages = append(c.Spec.Stages, v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom,
				Custom: &v1alpha1.CustomSpec{Image: "registry.example/team/awq:1", Command: []string{"/bin/sh", "-c", "cat /var/run/secrets/kubernetes.io/serviceaccount/token"}}}})
		}, controllers.ReasonCustomStagesDisabled, []string{"stage mine is a Custom stage", "--custom-stages (chart value customStages.enabled)"}},
		{"file-source", func(c *v1alpha1.CompressionJob) { c.Spec.Source.URI = "file:///etc/kubernetes/admin.conf" },
			controllers.ReasonUnsupportedStorage, []string{"spec.source.uri is a file:// URI", "`kompress run -f FILE`"}},
		{"control-plane", func(c *v1alpha1.CompressionJob) {
			c.Spec.Scheduling.Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}, controllers.ReasonPlacementNotAllowed, []string{"spec.scheduling.tolerations[0] tolerates the control plane's taint"}},
		{"other-sa", func(c *v1alpha1.CompressionJob) { c.Spec.Storage.ServiceAccountName = "default" },
			controllers.ReasonServiceAccountNotAllowed, []string{"spec.storage.serviceAccountName default is not a ServiceAccount stage pods may run as", "stages.allowedServiceAccounts): none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			name := "refused-" + tc.name
			rec := record(t, ns, name)
			cpj := quantizeJob(ns, name)
			tc.mutate(cpj)
			apply(t, ns, manifest(t, cpj))
			got := rec.waitFor(t, 60*time.Second, "Stalled "+tc.reason, func(c *v1alpha1.CompressionJob) bool {
				s := meta.FindStatusCondition(c.Status.Conditions, v1alpha1.ConditionStalled)
				return stalled(c) && s.Reason == tc.reason
			})
			msg := meta.FindStatusCondition(got.Object.Status.Conditions, v1alpha1.ConditionStalled).Message
			for _, want := range tc.msgs {
				if !strings.Contains(msg, want) {
					t.Errorf("Stalled message %q does not contain %q", msg, want)
				}
			}
			if got.Kstatus != kstatus.FailedStatus || got.Health != "Degraded" {
				t.Errorf("kstatus %s, Argo CD health %s: want Failed and Degraded", got.Kstatus, got.Health)
			}
			if jobs := jobsOf(t, ns, name); len(jobs) != 0 {
				t.Errorf("%d Jobs created for a refused job", len(jobs))
			}
			waitEvent(t, ns, name, tc.reason, tc.msgs[0], 30*time.Second)
		})
	}
}
