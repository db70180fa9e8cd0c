package chart

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// kustomizeBuild runs `kustomize build` in process on a folder of config/.
func kustomizeBuild(t *testing.T, rel string) manifests {
	t.Helper()
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // as kubectl apply -k: Namespaces and CRDs first
	k := krusty.MakeKustomizer(opts)
	res, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	objs, err := decodeManifests(out)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	return objs
}

// The kustomize layout and the chart with default values install the same
// objects with the same names, the same manager flags and the same rules,
// when the release is called kompress in namespace kompress-system.
func TestKustomizeMatchesChart(t *testing.T) {
	kz := kustomizeBuild(t, "config/default")
	chart := newHelm(t).render(t, "kompress", "kompress-system")

	t.Run("objects", func(t *testing.T) {
		want := append([]string{
			"CustomResourceDefinition /compressionjobs.kompress.dev", // the chart's is in crds/
			"Namespace /kompress-system",                             // helm install --create-namespace
		}, chart.ids()...)
		if diff := cmp.Diff(sortedCopy(want), kz.ids()); diff != "" {
			t.Errorf("config/default objects against the chart's (-chart +kustomize):\n%s", diff)
		}
	})

	t.Run("manager args", func(t *testing.T) {
		want := managerArgs(t, chart.onlyDeployment(t))
		got := managerArgs(t, kz.onlyDeployment(t))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config/manager args against the chart's (-chart +kustomize):\n%s", diff)
		}
		if diff := cmp.Diff(flagNames(t, want), flagNames(t, got)); diff != "" {
			t.Errorf("flag names (-chart +kustomize):\n%s", diff)
		}
	})

	t.Run("manager pod", func(t *testing.T) {
		want := summarizePod(t, chart.onlyDeployment(t))
		got := summarizePod(t, kz.onlyDeployment(t))
		// Labels differ by tool (helm.sh/chart, managed-by); the rest must not.
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config/manager pod against the chart's (-chart +kustomize):\n%s", diff)
		}
	})

	t.Run("rbac", func(t *testing.T) {
		want := summarizeRBAC(t, chart, "kompress-runner")
		got := summarizeRBAC(t, kz, "kompress-runner")
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("config/rbac against the chart's (-chart +kustomize):\n%s", diff)
		}
		var role rbacv1.ClusterRole
		kz.get(t, "ClusterRole", "", "kompress-manager-role", &role)
		if diff := cmp.Diff(generatedRules(t), role.Rules); diff != "" {
			t.Errorf("config/default manager rules against config/rbac/role.yaml (-role.yaml +built):\n%s", diff)
		}
	})

	t.Run("metrics service", func(t *testing.T) {
		var want, got corev1.Service
		name := "kompress-controller-manager-metrics-service"
		chart.get(t, "Service", "kompress-system", name, &want)
		kz.get(t, "Service", "kompress-system", name, &got)
		// Selectors differ by tool labels; both must pick their own pods.
		want.Spec.Selector, got.Spec.Selector = nil, nil
		if diff := cmp.Diff(want.Spec, got.Spec); diff != "" {
			t.Errorf("metrics Service (-chart +kustomize):\n%s", diff)
		}
		pod := kz.onlyDeployment(t).Spec.Template.Labels
		var svc corev1.Service
		kz.get(t, "Service", "kompress-system", name, &svc)
		for k, v := range svc.Spec.Selector {
			if pod[k] != v {
				t.Errorf("config/default Service selects %s=%s, the manager pod has %s=%q", k, v, k, pod[k])
			}
		}
	})
}

// config/samples builds, and holds only CompressionJobs.
func TestKustomizeSamples(t *testing.T) {
	objs := kustomizeBuild(t, "config/samples")
	if len(objs) == 0 {
		t.Fatal("config/samples builds to nothing")
	}
	for _, o := range objs {
		if o.GroupVersionKind().String() != "kompress.dev/v1alpha1, Kind=CompressionJob" {
			t.Errorf("config/samples holds %s, want only kompress.dev/v1alpha1 CompressionJobs", objectID(o.GetKind(), o.GetNamespace(), o.GetName()))
		}
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}
