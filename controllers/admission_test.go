package controllers_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

func customStage(name, image string) v1alpha1.Stage {
	return v1alpha1.Stage{Name: name, StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: image}}}
}

// A CompressionJob the cluster will not run, though the API server took
// it: it stalls before any Job exists, with a reason and a message naming
// the field and the setting, and runs once its spec is fixed.
func TestClusterRefusesJobs(t *testing.T) {
	e := sharedEnv(t)
	cases := []struct {
		name   string
		mutate func(c *v1alpha1.CompressionJob)
		reason string
		msgs   []string
		fix    func(s *v1alpha1.CompressionJobSpec)
	}{
		{"file:// source", func(c *v1alpha1.CompressionJob) {
			c.Spec.Source = v1alpha1.ModelSource{URI: "file:///models/mnist-8.onnx"}
		},
			controllers.ReasonUnsupportedStorage,
			[]string{"spec.source.uri is a file:// URI, which in a cluster names a path inside the stage pod's own container", "`kompress run -f FILE`"},
			func(s *v1alpha1.CompressionJobSpec) { s.Source.URI = "s3://models/mnist-8.onnx" }},
		{"mem:// output", func(c *v1alpha1.CompressionJob) { c.Spec.Output.URI = "mem://out" },
			controllers.ReasonUnsupportedStorage, []string{"spec.output.uri is a mem:// URI"}, nil},
		{"Custom image outside the allowlist, behind a built-in stage", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages = append(c.Spec.Stages, customStage("mine", "registry.example/other/awq:1"))
		}, controllers.ReasonImageNotAllowed,
			[]string{`spec.stages[1].custom.image "registry.example/other/awq:1" is not on the allowlist`, "--custom-stage-images (chart value customStages.images): registry.example/allowed/"},
			func(s *v1alpha1.CompressionJobSpec) { s.Stages[1].Custom.Image = "registry.example/allowed/awq:1" }},
		{"ServiceAccount not allowed", func(c *v1alpha1.CompressionJob) {
			c.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "deployer"}
		}, controllers.ReasonServiceAccountNotAllowed,
			[]string{"spec.storage.serviceAccountName deployer is not a ServiceAccount stage pods may run as", "--allowed-service-accounts (chart value stages.allowedServiceAccounts): workload-identity"}, nil},
		{"node selector out of the admin's pool", func(c *v1alpha1.CompressionJob) {
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"kompress.dev/pool": "gpu"}}
		}, controllers.ReasonPlacementNotAllowed,
			[]string{"spec.scheduling.nodeSelector sets kompress.dev/pool=gpu, but the cluster admin places stage pods on kompress.dev/pool=compress"},
			func(s *v1alpha1.CompressionJobSpec) { s.Scheduling.NodeSelector = map[string]string{"zone": "z1"} }},
		{"toleration of the control plane", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[0].Tolerations = []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		}, controllers.ReasonPlacementNotAllowed,
			[]string{"spec.stages[0].tolerations[0] tolerates the control plane's taint node-role.kubernetes.io/control-plane"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.namespace(t)
			e.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deployer"}})
			cpj := newCPJ(ns, "refused", pruneStage("prune"))
			tc.mutate(cpj)
			e.create(t, cpj)
			key := client.ObjectKeyFromObject(cpj)
			got := e.waitCPJ(t, key, "Stalled "+tc.reason, func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionTrue, tc.reason)
			})
			msg := cond(got, v1alpha1.ConditionStalled).Message
			for _, want := range tc.msgs {
				if !strings.Contains(msg, want) {
					t.Errorf("Stalled message %q does not contain %q", msg, want)
				}
			}
			if s := kstatusOf(t, got); s != kstatus.FailedStatus {
				t.Errorf("kstatus %s, want Failed", s)
			}
			if st := got.Status.Stages[0]; st.State != v1alpha1.StagePending || st.Reason != tc.reason || st.JobName == "" {
				t.Errorf("first stage %s/%s, want Pending/%s", st.State, st.Reason, tc.reason)
			}
			e.waitEvent(t, cpj, tc.reason, tc.msgs[0])
			if n := len(e.jobs(t, cpj)); n != 0 {
				t.Fatalf("%d Jobs created for a job the cluster refuses", n)
			}
			if tc.fix == nil {
				return
			}
			updateSpec(t, e, key, tc.fix)
			e.waitJobs(t, cpj, 1)
			e.waitCPJ(t, key, "no longer stalled", func(c *v1alpha1.CompressionJob) bool {
				return hasCond(c, v1alpha1.ConditionStalled, metav1.ConditionFalse, v1alpha1.ReasonPending)
			})
		})
	}
}

// An allowed Custom stage runs its image with plain env values, no token,
// local disk bounded, and the log tail as its message should it die: the
// API server accepts the Job as built.
func TestAllowedCustomStage(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	mine := customStage("mine", "registry.example/allowed/awq@sha256:"+strings.Repeat("e", 64))
	mine.Custom.Env = []v1alpha1.CustomEnvVar{{Name: "MODE", Value: "fast"}}
	cpj := newCPJ(ns, "custom", mine)
	cpj.Spec.Storage = &v1alpha1.StorageSpec{ServiceAccountName: "workload-identity"}
	e.create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "workload-identity"}})
	e.create(t, cpj)
	job := e.waitJobs(t, cpj, 1)[0]
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	type view struct {
		Image, SA      string
		Automount      *bool
		Env            map[string]string
		TermPolicy     corev1.TerminationMessagePolicy
		Scratch, Limit string
	}
	env := map[string]string{}
	for _, ev := range c.Env {
		if ev.ValueFrom == nil {
			env[ev.Name] = ev.Value
		} else if ev.ValueFrom.SecretKeyRef != nil || ev.ValueFrom.ConfigMapKeyRef != nil {
			t.Errorf("env %s reads a Secret or ConfigMap", ev.Name)
		}
	}
	delete(env, "KOMPRESS_TASK")
	lim := c.Resources.Limits[corev1.ResourceEphemeralStorage]
	got := view{c.Image, pod.ServiceAccountName, pod.AutomountServiceAccountToken, env, c.TerminationMessagePolicy,
		pod.Volumes[0].EmptyDir.SizeLimit.String(), lim.String()}
	want := view{mine.Custom.Image, "workload-identity", ptr.To(false), map[string]string{"MODE": "fast"},
		corev1.TerminationMessageFallbackToLogsOnError, "4Gi", "4Gi"} // the manager's default limit
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("custom stage Job (-want +got):\n%s", diff)
	}
}
