package chart

import (
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// render runs helm template and decodes what it prints.
func (h *helm) render(t *testing.T, release, namespace string, args ...string) manifests {
	t.Helper()
	out := h.mustRun(t, append([]string{"template", release, chartDir(t), "--namespace", namespace}, args...)...)
	objs, err := decodeManifests([]byte(out))
	if err != nil {
		t.Fatalf("helm template printed invalid YAML: %v", err)
	}
	return objs
}

func TestTemplateObjects(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name    string
		release string
		args    []string
		want    []string
	}{{
		name:    "default values",
		release: "kompress",
		want: []string{
			"ClusterRole /kompress-compressionjob-editor-role",
			"ClusterRole /kompress-compressionjob-viewer-role",
			"ClusterRole /kompress-manager-role",
			"ClusterRoleBinding /kompress-manager-rolebinding",
			"Deployment kompress-system/kompress-controller-manager",
			"Role kompress-system/kompress-leader-election-role",
			"RoleBinding kompress-system/kompress-leader-election-rolebinding",
			"Service kompress-system/kompress-controller-manager-metrics-service",
			"ServiceAccount kompress-system/kompress-controller-manager",
			"ServiceAccount kompress-system/kompress-runner",
		},
	}, {
		name:    "release name without the chart name gets it appended",
		release: "ml",
		args:    []string{"--set", "rbac.aggregateToDefaultRoles=false"},
		want: []string{
			"ClusterRole /ml-kompress-manager-role",
			"ClusterRoleBinding /ml-kompress-manager-rolebinding",
			"Deployment kompress-system/ml-kompress-controller-manager",
			"Role kompress-system/ml-kompress-leader-election-role",
			"RoleBinding kompress-system/ml-kompress-leader-election-rolebinding",
			"Service kompress-system/ml-kompress-controller-manager-metrics-service",
			"ServiceAccount kompress-system/ml-kompress-controller-manager",
			"ServiceAccount kompress-system/ml-kompress-runner",
		},
	}, {
		name:    "every option set",
		release: "rel",
		args:    []string{"-f", allValues},
		want: []string{
			"ClusterRole /acme-kompress-manager-role",
			// metrics.secure: the manager's TokenReviews and
			// SubjectAccessReviews, and a role for scrapers.
			"ClusterRole /acme-kompress-metrics-auth-role",
			"ClusterRole /acme-kompress-metrics-reader",
			"ClusterRoleBinding /acme-kompress-metrics-auth-rolebinding",
			"Deployment kompress-system/acme-kompress-controller-manager",
			"PodDisruptionBudget kompress-system/acme-kompress-controller-manager",
			"Role kompress-leases/acme-kompress-leader-election-role",
			"RoleBinding kompress-leases/acme-kompress-leader-election-rolebinding",
			// watchNamespace: the manager's rules apply in ml-team only.
			"RoleBinding ml-team/acme-kompress-manager-rolebinding",
			"Service kompress-system/acme-kompress-controller-manager-metrics-service",
			"ServiceAccount kompress-system/compress-runner",
			"ServiceAccount kompress-system/kompress-mgr",
			"ServiceAccount ml-team/compress-runner",
			"ServiceAccount vision/compress-runner",
		},
	}, {
		name:    "no RBAC, no metrics, no leader election, existing ServiceAccounts",
		release: "kompress",
		args: []string{"--set", "rbac.create=false,metrics.enabled=false,leaderElection.enabled=false," +
			"serviceAccount.create=false,serviceAccount.name=ops-sa," +
			"runner.serviceAccount.create=false,runner.serviceAccount.name=ops-runner"},
		want: []string{"Deployment kompress-system/kompress-controller-manager"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := h.render(t, tc.release, "kompress-system", tc.args...).ids()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("rendered objects (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateManagerArgs(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name      string
		release   string
		namespace string
		args      []string
		want      []string
	}{{
		name:      "default values",
		release:   "kompress",
		namespace: "kompress-system",
		want: []string{
			"--metrics-bind-address=:8080",
			"--metrics-secure=false",
			"--health-probe-bind-address=:8081",
			"--leader-elect",
			"--leader-election-namespace=kompress-system",
			"--runner-image=ghcr.io/kompress/kompress-runner:v0.1.0",
			"--runner-image-pull-policy=IfNotPresent",
			"--runner-service-account=kompress-runner",
			"--runner-version=v0.1.0",
			"--stage-cpu-request=1",
			"--stage-memory-request=1Gi",
			// Empty: no CPU limit, whatever the manager's built-in default.
			"--stage-cpu-limit=",
			"--stage-memory-limit=2Gi",
			"--stage-ephemeral-storage-request=256Mi",
			"--stage-ephemeral-storage-limit=8Gi",
			"--stage-node-selector=",
			"--stage-tolerations=",
			// Custom stages off, no ServiceAccount but the runner's.
			"--custom-stages=false",
			"--custom-stage-images=",
			"--allowed-service-accounts=",
			"--image-pull-stall-after=5m",
			"--max-concurrent-reconciles=4",
			"--zap-log-level=info",
			"--zap-encoder=json",
		},
	}, {
		name:      "every option set",
		release:   "rel",
		namespace: "kompress-system",
		args:      []string{"-f", allValues},
		want: []string{
			"--metrics-bind-address=:9090",
			"--metrics-secure=true",
			"--health-probe-bind-address=:9091",
			"--leader-elect",
			"--leader-election-namespace=kompress-leases",
			"--runner-image=registry.example.com/kompress/runner:v9.9.8",
			"--runner-image-pull-policy=Never",
			"--runner-service-account=compress-runner",
			"--runner-version=v9.9.8-cache2",
			"--stage-cpu-request=2",
			"--stage-memory-request=3Gi",
			"--stage-cpu-limit=4500m",
			// Written as a plain YAML number: not 8.589934592e+09.
			"--stage-memory-limit=8589934592",
			"--stage-ephemeral-storage-request=1Gi",
			"--stage-ephemeral-storage-limit=20Gi",
			"--stage-node-selector=kubernetes.io/arch=arm64,pool=edge",
			`--stage-tolerations=[{"effect":"NoSchedule","key":"pool","operator":"Equal","value":"edge"},` +
				`{"effect":"NoExecute","key":"example.com/spot","operator":"Exists","tolerationSeconds":600}]`,
			"--custom-stages=true",
			"--custom-stage-images=registry.example.com/ml-team/,sha256:0d715376572e89832685c56a65ef1391f5f0b7dd31d61050c91ff3ecab16c032",
			"--allowed-service-accounts=s3-reader,ml-team/gcs-writer",
			"--image-pull-stall-after=90s",
			"--max-concurrent-reconciles=16",
			"--watch-namespace=ml-team",
			"--zap-log-level=debug",
			"--zap-encoder=console",
		},
	}, {
		name:      "release and namespace name the runner account and lease namespace",
		release:   "prod",
		namespace: "ops",
		args: []string{"--set", "runner.image.tag=v0.2.0,stages.resources.limits.memory=null,logLevel=3",
			"--set-string", "stages.resources.requests.cpu=500m"},
		want: []string{
			"--metrics-bind-address=:8080",
			"--metrics-secure=false",
			"--health-probe-bind-address=:8081",
			"--leader-elect",
			"--leader-election-namespace=ops",
			"--runner-image=ghcr.io/kompress/kompress-runner:v0.2.0",
			"--runner-image-pull-policy=IfNotPresent",
			"--runner-service-account=prod-kompress-runner",
			// The runner version follows the runner image's tag.
			"--runner-version=v0.2.0",
			"--stage-cpu-request=500m",
			"--stage-memory-request=1Gi",
			"--stage-cpu-limit=",
			"--stage-memory-limit=",
			"--stage-ephemeral-storage-request=256Mi",
			"--stage-ephemeral-storage-limit=8Gi",
			"--stage-node-selector=",
			"--stage-tolerations=",
			"--custom-stages=false",
			"--custom-stage-images=",
			"--allowed-service-accounts=",
			"--image-pull-stall-after=5m",
			"--max-concurrent-reconciles=4",
			"--zap-log-level=3",
			"--zap-encoder=json",
		},
	}, {
		name:      "leader election and metrics off",
		release:   "kompress",
		namespace: "kompress-system",
		args:      []string{"--set", "leaderElection.enabled=false,metrics.enabled=false,stages.resources.requests=null,stages.resources.limits.memory=null"},
		want: []string{
			"--metrics-bind-address=0",
			"--metrics-secure=false",
			"--health-probe-bind-address=:8081",
			"--leader-elect=false",
			"--runner-image=ghcr.io/kompress/kompress-runner:v0.1.0",
			"--runner-image-pull-policy=IfNotPresent",
			"--runner-service-account=kompress-runner",
			"--runner-version=v0.1.0",
			"--stage-cpu-request=",
			"--stage-memory-request=",
			"--stage-cpu-limit=",
			"--stage-memory-limit=",
			"--stage-ephemeral-storage-request=",
			"--stage-ephemeral-storage-limit=8Gi",
			"--stage-node-selector=",
			"--stage-tolerations=",
			"--custom-stages=false",
			"--custom-stage-images=",
			"--allowed-service-accounts=",
			"--image-pull-stall-after=5m",
			"--max-concurrent-reconciles=4",
			"--zap-log-level=info",
			"--zap-encoder=json",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.render(t, tc.release, tc.namespace, tc.args...).onlyDeployment(t)
			if diff := cmp.Diff(tc.want, managerArgs(t, d)); diff != "" {
				t.Errorf("manager args (-want +got):\n%s", diff)
			}
		})
	}
}

// Every flag the manager has is reachable from values.
func TestTemplateRendersEveryManagerFlag(t *testing.T) {
	d := newHelm(t).render(t, "rel", "kompress-system", "-f", allValues).onlyDeployment(t)
	if diff := cmp.Diff(allManagerFlags, flagNames(t, managerArgs(t, d))); diff != "" {
		t.Errorf("flags rendered with %s (-want +got):\n%s", allValues, diff)
	}
}

// podSummary is what values decide about the manager pod.
type podSummary struct {
	Replicas           int32
	Image, PullPolicy  string
	Command            []string
	ServiceAccount     string
	PullSecrets        []string
	NodeSelector       map[string]string
	Tolerations        []corev1.Toleration
	AntiAffinityWeight int32
	PriorityClassName  string
	Annotations        map[string]string
	ExtraLabels        map[string]string
	PodSecurity        *corev1.PodSecurityContext
	Security           *corev1.SecurityContext
	Resources          map[string]string
	Ports              map[string]int32
	Probes             map[string]string
	SelectorMatchesPod bool
}

func summarizePod(t *testing.T, d *appsv1.Deployment) podSummary {
	t.Helper()
	spec := d.Spec.Template.Spec
	if len(spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(spec.Containers))
	}
	c := spec.Containers[0]
	s := podSummary{
		Replicas:          ptr.Deref(d.Spec.Replicas, -1),
		Image:             c.Image,
		PullPolicy:        string(c.ImagePullPolicy),
		Command:           c.Command,
		ServiceAccount:    spec.ServiceAccountName,
		NodeSelector:      spec.NodeSelector,
		Tolerations:       spec.Tolerations,
		PriorityClassName: spec.PriorityClassName,
		Annotations:       d.Spec.Template.Annotations,
		ExtraLabels:       map[string]string{},
		PodSecurity:       spec.SecurityContext,
		Security:          c.SecurityContext,
		Resources:         map[string]string{},
		Ports:             map[string]int32{},
		Probes:            map[string]string{},
	}
	for _, ps := range spec.ImagePullSecrets {
		s.PullSecrets = append(s.PullSecrets, ps.Name)
	}
	if a := spec.Affinity; a != nil && a.PodAntiAffinity != nil && len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) > 0 {
		s.AntiAffinityWeight = a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].Weight
	}
	for k, v := range d.Spec.Template.Labels {
		if k == "example.com/tier" {
			s.ExtraLabels[k] = v
		}
	}
	for name, q := range c.Resources.Requests {
		s.Resources["requests."+string(name)] = q.String()
	}
	for name, q := range c.Resources.Limits {
		s.Resources["limits."+string(name)] = q.String()
	}
	for _, p := range c.Ports {
		s.Ports[p.Name] = p.ContainerPort
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p != nil && p.HTTPGet != nil {
			s.Probes[name] = p.HTTPGet.Path + " on " + p.HTTPGet.Port.String()
		}
	}
	s.SelectorMatchesPod = true
	for k, v := range d.Spec.Selector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			s.SelectorMatchesPod = false
		}
	}
	return s
}

func TestTemplateManagerPod(t *testing.T) {
	hardened := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	probes := map[string]string{"liveness": "/healthz on health", "readiness": "/readyz on health"}
	h := newHelm(t)
	for _, tc := range []struct {
		name string
		args []string
		want podSummary
	}{{
		name: "default values",
		want: podSummary{
			Replicas:       1,
			Image:          "ghcr.io/kompress/kompress-manager:v0.1.0",
			PullPolicy:     "IfNotPresent",
			Command:        []string{"/manager"},
			ServiceAccount: "kompress-controller-manager",
			Annotations:    map[string]string{"kubectl.kubernetes.io/default-container": "manager"},
			ExtraLabels:    map[string]string{},
			PodSecurity: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](65532),
				RunAsGroup:     ptr.To[int64](65532),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Security: hardened,
			Resources: map[string]string{
				"requests.cpu": "50m", "requests.memory": "64Mi",
				"limits.cpu": "500m", "limits.memory": "256Mi",
			},
			Ports:              map[string]int32{"metrics": 8080, "health": 8081},
			Probes:             probes,
			SelectorMatchesPod: true,
		},
	}, {
		name: "every option set",
		args: []string{"-f", allValues},
		want: podSummary{
			Replicas:       2,
			Image:          "registry.example.com/kompress/manager:v9.9.9",
			PullPolicy:     "Always",
			Command:        []string{"/manager"},
			ServiceAccount: "kompress-mgr",
			PullSecrets:    []string{"regcred"},
			NodeSelector:   map[string]string{"node-role.kubernetes.io/control-plane": ""},
			Tolerations: []corev1.Toleration{{
				Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule,
			}},
			AntiAffinityWeight: 100,
			PriorityClassName:  "system-cluster-critical",
			Annotations: map[string]string{
				"kubectl.kubernetes.io/default-container": "manager",
				"example.com/team":                        "ml-platform",
			},
			ExtraLabels: map[string]string{"example.com/tier": "control"},
			PodSecurity: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](1000),
				RunAsGroup:     ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Security: &corev1.SecurityContext{
				Privileged:               ptr.To(false),
				AllowPrivilegeEscalation: ptr.To(false),
				ReadOnlyRootFilesystem:   ptr.To(true),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			},
			Resources: map[string]string{
				"requests.cpu": "100m", "requests.memory": "128Mi",
				"limits.cpu": "1", "limits.memory": "1073741824",
			},
			Ports:              map[string]int32{"metrics": 9090, "health": 9091},
			Probes:             probes,
			SelectorMatchesPod: true,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			d := h.render(t, "kompress", "kompress-system", tc.args...).onlyDeployment(t)
			if diff := cmp.Diff(tc.want, summarizePod(t, d)); diff != "" {
				t.Errorf("manager pod (-want +got):\n%s", diff)
			}
		})
	}
}

// rbacSummary is the permission graph a render sets up.
type rbacSummary struct {
	ManagerRoleRules     []rbacv1.PolicyRule
	ManagerBinding       string // "Kind namespace/name -> ClusterRole name"
	ManagerSubjects      []rbacv1.Subject
	LeaderElectionRole   string
	LeaderElectionRules  []rbacv1.PolicyRule
	LeaderElectionSubj   []rbacv1.Subject
	RunnerAccounts       []string // "namespace/name automount=false"
	RunnerBindings       []string // bindings naming a runner account: must stay empty
	AggregatedRoleLabels []string
}

func summarizeRBAC(t *testing.T, objs manifests, runnerName string) rbacSummary {
	t.Helper()
	var s rbacSummary
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			objs.get(t, o.GetKind(), "", o.GetName(), &r)
			aggregated := false
			for k, v := range r.Labels {
				if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
					s.AggregatedRoleLabels = append(s.AggregatedRoleLabels, r.Name+" "+k)
					aggregated = true
				}
			}
			if aggregated || strings.Contains(r.Name, "-metrics-") {
				continue // the metrics roles: see TestTemplateMetricsAuth
			}
			s.ManagerRoleRules = r.Rules
		case "Role":
			var r rbacv1.Role
			objs.get(t, o.GetKind(), o.GetNamespace(), o.GetName(), &r)
			s.LeaderElectionRole = objectID("Role", r.Namespace, r.Name)
			s.LeaderElectionRules = r.Rules
		case "ClusterRoleBinding", "RoleBinding":
			var b rbacv1.RoleBinding // same fields as a ClusterRoleBinding
			objs.get(t, o.GetKind(), o.GetNamespace(), o.GetName(), &b)
			for _, sub := range b.Subjects {
				if sub.Name == runnerName {
					s.RunnerBindings = append(s.RunnerBindings, objectID(o.GetKind(), b.Namespace, b.Name))
				}
			}
			if b.RoleRef.Kind == "Role" {
				s.LeaderElectionSubj = b.Subjects
				continue
			}
			if strings.Contains(b.RoleRef.Name, "-metrics-") {
				continue
			}
			s.ManagerBinding = objectID(o.GetKind(), b.Namespace, b.Name) + " -> " + b.RoleRef.Kind + " " + b.RoleRef.Name
			s.ManagerSubjects = b.Subjects
		case "ServiceAccount":
			var sa corev1.ServiceAccount
			objs.get(t, o.GetKind(), o.GetNamespace(), o.GetName(), &sa)
			if sa.Name == runnerName {
				automount := "unset"
				if sa.AutomountServiceAccountToken != nil {
					automount = map[bool]string{true: "true", false: "false"}[*sa.AutomountServiceAccountToken]
				}
				s.RunnerAccounts = append(s.RunnerAccounts, sa.Namespace+"/"+sa.Name+" automount="+automount)
			}
		}
	}
	sort.Strings(s.AggregatedRoleLabels)
	sort.Strings(s.RunnerAccounts)
	return s
}

func TestTemplateRBAC(t *testing.T) {
	rules := generatedRules(t)
	h := newHelm(t)
	for _, tc := range []struct {
		name, runner string
		args         []string
		want         rbacSummary
	}{{
		name:   "default values",
		runner: "kompress-runner",
		want: rbacSummary{
			ManagerRoleRules:    rules,
			ManagerBinding:      "ClusterRoleBinding /kompress-manager-rolebinding -> ClusterRole kompress-manager-role",
			ManagerSubjects:     []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kompress-controller-manager", Namespace: "kompress-system"}},
			LeaderElectionRole:  "Role kompress-system/kompress-leader-election-role",
			LeaderElectionRules: leaderElectionRules,
			LeaderElectionSubj:  []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kompress-controller-manager", Namespace: "kompress-system"}},
			RunnerAccounts:      []string{"kompress-system/kompress-runner automount=false"},
			AggregatedRoleLabels: []string{
				"kompress-compressionjob-editor-role rbac.authorization.k8s.io/aggregate-to-admin",
				"kompress-compressionjob-editor-role rbac.authorization.k8s.io/aggregate-to-edit",
				"kompress-compressionjob-viewer-role rbac.authorization.k8s.io/aggregate-to-view",
			},
		},
	}, {
		name:   "every option set",
		runner: "compress-runner",
		args:   []string{"-f", allValues},
		want: rbacSummary{
			ManagerRoleRules:    rules,
			ManagerBinding:      "RoleBinding ml-team/acme-kompress-manager-rolebinding -> ClusterRole acme-kompress-manager-role",
			ManagerSubjects:     []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kompress-mgr", Namespace: "kompress-system"}},
			LeaderElectionRole:  "Role kompress-leases/acme-kompress-leader-election-role",
			LeaderElectionRules: leaderElectionRules,
			LeaderElectionSubj:  []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kompress-mgr", Namespace: "kompress-system"}},
			RunnerAccounts: []string{
				"kompress-system/compress-runner automount=false",
				"ml-team/compress-runner automount=false",
				"vision/compress-runner automount=false",
			},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := summarizeRBAC(t, h.render(t, "kompress", "kompress-system", tc.args...), tc.runner)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("RBAC (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTemplateMetricsService(t *testing.T) {
	h := newHelm(t)
	for _, tc := range []struct {
		name     string
		args     []string
		wantName string
		want     corev1.ServiceSpec
	}{{
		name:     "default values",
		wantName: "kompress-controller-manager-metrics-service",
		want: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 8080, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")}},
			Selector: map[string]string{"app.kubernetes.io/name": "kompress", "app.kubernetes.io/instance": "kompress", "control-plane": "controller-manager"},
		},
	}, {
		name:     "every option set",
		args:     []string{"-f", allValues},
		wantName: "acme-kompress-controller-manager-metrics-service",
		want: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeNodePort,
			Ports:    []corev1.ServicePort{{Name: "metrics", Port: 9443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromString("metrics")}},
			Selector: map[string]string{"app.kubernetes.io/name": "kz", "app.kubernetes.io/instance": "kompress", "control-plane": "controller-manager"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			objs := h.render(t, "kompress", "kompress-system", tc.args...)
			var svc corev1.Service
			objs.get(t, "Service", "kompress-system", tc.wantName, &svc)
			if diff := cmp.Diff(tc.want, svc.Spec); diff != "" {
				t.Errorf("metrics Service (-want +got):\n%s", diff)
			}
			// The selector must pick the manager pods.
			pod := objs.onlyDeployment(t).Spec.Template.Labels
			for k, v := range svc.Spec.Selector {
				if pod[k] != v {
					t.Errorf("Service selects %s=%s, the manager pod has %s=%q", k, v, k, pod[k])
				}
			}
		})
	}
}

// What a cluster admin expects of an operator's chart: images pinned by
// digest, flags and environment added to the manager, a PodDisruptionBudget
// and a ServiceMonitor that scrapes the way metrics.secure serves.
func TestTemplateConventions(t *testing.T) {
	h := newHelm(t)
	const mgrDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const runDigest = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	objs := h.render(t, "kompress", "kompress-system",
		"--set", "image.digest="+mgrDigest+",runner.image.digest="+runDigest,
		"--set", "extraArgs={--stage-cpu-limit=4}",
		"--set", "extraEnv[0].name=HTTPS_PROXY,extraEnv[0].value=http://proxy:3128",
		"--set", "logEncoding=console,podDisruptionBudget.enabled=true",
		"--set", "metrics.serviceMonitor.enabled=true,metrics.serviceMonitor.labels.release=prom,metrics.secure=true")
	d := objs.onlyDeployment(t)
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "ghcr.io/kompress/kompress-manager@"+mgrDigest {
		t.Errorf("manager image %s, want it pinned by digest", c.Image)
	}
	args := managerArgs(t, d)
	for _, want := range []string{"--runner-image=ghcr.io/kompress/kompress-runner@" + runDigest, "--zap-encoder=console", "--metrics-secure=true"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	// extraArgs come last, so they override the chart's own.
	if args[len(args)-1] != "--stage-cpu-limit=4" {
		t.Errorf("manager args %v do not end with the extraArgs", args)
	}
	if len(c.Env) != 1 || c.Env[0].Name != "HTTPS_PROXY" || c.Env[0].Value != "http://proxy:3128" {
		t.Errorf("manager env %+v, want extraEnv", c.Env)
	}
	var pdb policyv1.PodDisruptionBudget
	objs.get(t, "PodDisruptionBudget", "kompress-system", "kompress-controller-manager", &pdb)
	if pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB maxUnavailable %v, want 1", pdb.Spec.MaxUnavailable)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("PDB selector %v does not select the manager pod %v", pdb.Spec.Selector, d.Spec.Template.Labels)
	}
	var sm struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec struct {
			Selector  metav1.LabelSelector `json:"selector"`
			Endpoints []struct {
				Port            string `json:"port"`
				Scheme          string `json:"scheme"`
				BearerTokenFile string `json:"bearerTokenFile"`
				TLSConfig       *struct {
					InsecureSkipVerify bool `json:"insecureSkipVerify"`
				} `json:"tlsConfig"`
			} `json:"endpoints"`
		} `json:"spec"`
	}
	objs.get(t, "ServiceMonitor", "kompress-system", "kompress-controller-manager-metrics", &sm)
	var svc corev1.Service
	objs.get(t, "Service", "kompress-system", "kompress-controller-manager-metrics-service", &svc)
	smSel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil || !smSel.Matches(labels.Set(svc.Labels)) {
		t.Errorf("ServiceMonitor selector %v does not select the metrics Service %v", sm.Spec.Selector, svc.Labels)
	}
	if e := sm.Spec.Endpoints; len(e) != 1 || e[0].Port != svc.Spec.Ports[0].Name || e[0].Scheme != "https" || e[0].BearerTokenFile == "" || e[0].TLSConfig == nil {
		t.Errorf("ServiceMonitor endpoints %+v, want HTTPS with the ServiceAccount token on port %s", e, svc.Spec.Ports[0].Name)
	}
	if sm.Metadata.Labels["release"] != "prom" {
		t.Errorf("ServiceMonitor labels %v lack metrics.serviceMonitor.labels", sm.Metadata.Labels)
	}
	// Plain metrics: the ServiceMonitor scrapes HTTP without a token.
	plain := h.render(t, "kompress", "kompress-system", "--set", "metrics.serviceMonitor.enabled=true")
	sm.Spec.Endpoints = nil
	plain.get(t, "ServiceMonitor", "kompress-system", "kompress-controller-manager-metrics", &sm)
	if e := sm.Spec.Endpoints; len(e) != 1 || e[0].Scheme != "http" || e[0].BearerTokenFile != "" {
		t.Errorf("ServiceMonitor endpoints %+v with plain metrics, want HTTP", e)
	}
}
