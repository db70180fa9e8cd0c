package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kompressv1alpha1 "github.com/kompress/kompress/api/v1alpha1"
)

const crdName = "compressionjobs.kompress.dev"

// The chart installs into a real API server, its objects and permissions
// work, every sample is accepted, and upgrade and uninstall work.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	cp := startControlPlane(t)
	h := newHelm(t)
	chart := chartDir(t)
	// Namespaces the all-values upgrade refers to; helm creates only its own.
	for _, ns := range []string{"ml-team", "vision", "kompress-leases"} {
		if err := cp.client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}

	notes := h.mustRun(t, "install", "kompress", chart, "--namespace", "kompress-system", "--create-namespace", "--kubeconfig", cp.kubeconfig)
	installed := cp.releaseObjects(t, h)

	t.Run("NOTES", func(t *testing.T) {
		// They tell how to apply the in-cluster sample and watch it.
		sample := readManifests(t, "config/samples/kompress_v1alpha1_compressionjob.yaml")
		if len(sample) != 1 {
			t.Fatalf("want one CompressionJob in the in-cluster sample, got %v", sample.ids())
		}
		for _, want := range []string{
			"kubectl -n kompress-system create secret generic kompress-s3",
			"kubectl -n kompress-system apply -f config/samples/kompress_v1alpha1_compressionjob.yaml",
			"kubectl -n kompress-system get cpj",
			"kubectl -n kompress-system wait --for=condition=Ready cpj/" + sample[0].GetName(),
			`Stage pods run as ServiceAccount "kompress-runner"`,
			"Custom stages are off (customStages.enabled)",
		} {
			if !strings.Contains(notes, want) {
				t.Errorf("helm install output lacks %q:\n%s", want, notes)
			}
		}
	})

	t.Run("CRD established", func(t *testing.T) {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := cp.client.Get(t.Context(), types.NamespacedName{Name: crdName}, &crd); err != nil {
			t.Fatalf("the chart did not install the CRD: %v", err)
		}
		if !crdEstablished(&crd) {
			t.Errorf("CRD %s is not Established: %+v", crdName, crd.Status.Conditions)
		}
		if diff := cmp.Diff([]string{"cpj"}, crd.Spec.Names.ShortNames); diff != "" {
			t.Errorf("short names (-want +got):\n%s", diff)
		}
	})

	t.Run("objects exist", func(t *testing.T) {
		want := []string{
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
		}
		if diff := cmp.Diff(want, installed.ids()); diff != "" {
			t.Errorf("release objects (-want +got):\n%s", diff)
		}
		cp.expectExist(t, installed)
		var sa corev1.ServiceAccount
		cp.mustGet(t, "kompress-system", "kompress-runner", &sa)
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("runner ServiceAccount automountServiceAccountToken = %v, want false", sa.AutomountServiceAccountToken)
		}
		var d appsv1.Deployment
		cp.mustGet(t, "kompress-system", "kompress-controller-manager", &d)
		if diff := cmp.Diff(managerArgs(t, installed.onlyDeployment(t)), managerArgs(t, &d)); diff != "" {
			t.Errorf("live manager args against the release manifest (-manifest +live):\n%s", diff)
		}
	})

	t.Run("permissions", func(t *testing.T) {
		cp.expectManagerAccess(t, "kompress-system", "kompress-controller-manager", "")
		cp.expectRunnerHasNoAccess(t, "kompress-system", "kompress-runner")
		if !cp.allowed(t, "kompress-system", "kompress-controller-manager", access{Namespace: "kompress-system", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}) {
			t.Error("the manager cannot update its leader-election Lease in kompress-system")
		}
		if cp.allowed(t, "kompress-system", "kompress-controller-manager", access{Namespace: "ml-team", Verb: "update", Group: "coordination.k8s.io", Resource: "leases"}) {
			t.Error("the manager may update Leases outside its leader-election namespace")
		}
	})

	t.Run("samples accepted", func(t *testing.T) {
		cp.createSamples(t, "ml-team")
	})

	t.Run("invalid CompressionJobs rejected", func(t *testing.T) {
		cp.expectSampleRejected(t, "ml-team", func(u *unstructured.Unstructured) {
			mustSet(t, u, "s3://bucket/x", "spec", "bogus")
		}, `unknown field "spec.bogus"`)
		cp.expectSampleRejected(t, "ml-team", func(u *unstructured.Unstructured) {
			mustSet(t, u, "ftp://bucket/model.onnx", "spec", "source", "uri")
		}, "spec.source.uri")
	})

	t.Run("upgrade", func(t *testing.T) {
		h.mustRun(t, "upgrade", "kompress", chart, "--namespace", "kompress-system", "-f", allValues, "--kubeconfig", cp.kubeconfig)
		upgraded := cp.releaseObjects(t, h)
		cp.expectExist(t, upgraded)
		// Objects renamed by fullnameOverride are gone, not left behind.
		for _, o := range installed {
			if _, ok := findID(upgraded, o); !ok {
				cp.expectGone(t, o)
			}
		}
		var d appsv1.Deployment
		cp.mustGet(t, "kompress-system", "acme-kompress-controller-manager", &d)
		if diff := cmp.Diff(managerArgs(t, upgraded.onlyDeployment(t)), managerArgs(t, &d)); diff != "" {
			t.Errorf("live manager args after upgrade (-manifest +live):\n%s", diff)
		}
		if got := flagNames(t, managerArgs(t, &d)); !cmp.Equal(allManagerFlags, got) {
			t.Errorf("live manager flags after upgrade = %v, want %v", got, allManagerFlags)
		}
		// watchNamespace: the manager's rules hold in ml-team and nowhere else.
		cp.expectManagerAccess(t, "kompress-system", "kompress-mgr", "ml-team")
		for _, ns := range []string{"ml-team", "vision", "kompress-system"} {
			cp.expectRunnerHasNoAccess(t, ns, "compress-runner")
		}
		// Samples created before the upgrade are still there.
		var list kompressv1alpha1.CompressionJobList
		if err := cp.client.List(t.Context(), &list, client.InNamespace("ml-team")); err != nil {
			t.Fatal(err)
		}
		if len(list.Items) == 0 {
			t.Error("no CompressionJobs left in ml-team after the upgrade")
		}
		installed = upgraded
	})

	t.Run("uninstall", func(t *testing.T) {
		h.mustRun(t, "uninstall", "kompress", "--namespace", "kompress-system", "--kubeconfig", cp.kubeconfig)
		for _, o := range installed {
			cp.expectGone(t, o)
		}
		// Helm keeps CRDs, so users' CompressionJobs survive an uninstall.
		var crd apiextensionsv1.CustomResourceDefinition
		if err := cp.client.Get(t.Context(), types.NamespacedName{Name: crdName}, &crd); err != nil {
			t.Errorf("CRD gone after uninstall: %v", err)
		}
		if out, err := h.run("status", "kompress", "--namespace", "kompress-system", "--kubeconfig", cp.kubeconfig); err == nil {
			t.Errorf("helm status after uninstall succeeded:\n%s", out)
		}
	})
}

// config/default applies (server-side) to a real API server, and its samples
// are accepted there.
func TestKustomizeApply(t *testing.T) {
	cp := startControlPlane(t)
	objs := kustomizeBuild(t, "config/default")
	for _, o := range objs {
		cp.apply(t, o)
		if o.GetKind() == "CustomResourceDefinition" {
			cp.waitEstablished(t, o.GetName())
		}
	}
	cp.expectExist(t, objs)
	cp.expectManagerAccess(t, "kompress-system", "kompress-controller-manager", "")
	cp.expectRunnerHasNoAccess(t, "kompress-system", "kompress-runner")
	for _, o := range kustomizeBuild(t, "config/samples") {
		o.SetNamespace("kompress-system")
		cp.apply(t, o)
	}
}

// releaseObjects decodes what helm says the release installed.
func (cp *controlPlane) releaseObjects(t *testing.T, h *helm) manifests {
	t.Helper()
	out := h.mustRun(t, "get", "manifest", "kompress", "--namespace", "kompress-system", "--kubeconfig", cp.kubeconfig)
	objs, err := decodeManifests([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func (cp *controlPlane) mustGet(t *testing.T, namespace, name string, obj client.Object) {
	t.Helper()
	if err := cp.client.Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: name}, obj); err != nil {
		t.Fatalf("get %s/%s: %v", namespace, name, err)
	}
}

func (cp *controlPlane) expectExist(t *testing.T, objs manifests) {
	t.Helper()
	for _, o := range objs {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := cp.client.Get(t.Context(), client.ObjectKeyFromObject(o), live); err != nil {
			t.Errorf("%s: %v", objectID(o.GetKind(), o.GetNamespace(), o.GetName()), err)
		}
	}
}

func (cp *controlPlane) expectGone(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	err := cp.client.Get(t.Context(), client.ObjectKeyFromObject(o), live)
	if !apierrors.IsNotFound(err) {
		t.Errorf("%s still exists (err %v)", objectID(o.GetKind(), o.GetNamespace(), o.GetName()), err)
	}
}

func findID(objs manifests, o *unstructured.Unstructured) (*unstructured.Unstructured, bool) {
	for _, x := range objs {
		if x.GetKind() == o.GetKind() && x.GetNamespace() == o.GetNamespace() && x.GetName() == o.GetName() {
			return x, true
		}
	}
	return nil, false
}

// apply is `kubectl apply --server-side` of one object.
func (cp *controlPlane) apply(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	err := cp.client.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
		client.FieldOwner("kompress-chart-test"), client.ForceOwnership)
	if err != nil {
		t.Fatalf("server-side apply %s: %v", objectID(o.GetKind(), o.GetNamespace(), o.GetName()), err)
	}
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

func (cp *controlPlane) waitEstablished(t *testing.T, name string) {
	t.Helper()
	var crd apiextensionsv1.CustomResourceDefinition
	for range 100 {
		cp.mustGet(t, "", name, &crd)
		if crdEstablished(&crd) {
			return
		}
		sleepBriefly()
	}
	t.Fatalf("CRD %s not Established after 10s: %+v", name, crd.Status.Conditions)
}

// expectManagerAccess checks that every rule of config/rbac/role.yaml is
// granted to the manager (cluster-wide, or in watchNamespace only), and that
// nothing an operator should never do is.
func (cp *controlPlane) expectManagerAccess(t *testing.T, namespace, name, watchNamespace string) {
	t.Helper()
	granted := "" // all namespaces
	if watchNamespace != "" {
		granted = watchNamespace
	}
	for _, rule := range generatedRules(t) {
		for _, group := range rule.APIGroups {
			for _, res := range rule.Resources {
				resource, sub, _ := strings.Cut(res, "/")
				for _, verb := range rule.Verbs {
					a := access{Namespace: granted, Verb: verb, Group: group, Resource: resource, Subresource: sub}
					if !cp.allowed(t, namespace, name, a) {
						t.Errorf("manager %s/%s may not %+v, which config/rbac/role.yaml grants", namespace, name, a)
					}
					if watchNamespace != "" {
						a.Namespace = "vision"
						if cp.allowed(t, namespace, name, a) {
							t.Errorf("manager %s/%s watching %s may %+v outside it", namespace, name, watchNamespace, a)
						}
					}
				}
			}
		}
	}
	for _, a := range []access{
		{Verb: "delete", Resource: "namespaces"},
		{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token", Namespace: "kube-system"},
		{Verb: "delete", Group: "apiextensions.k8s.io", Resource: "customresourcedefinitions"},
		// It patches (finalizers, status) and never replaces a whole object.
		{Verb: "update", Group: "kompress.dev", Resource: "compressionjobs"},
		{Verb: "update", Group: "kompress.dev", Resource: "compressionjobs", Subresource: "status"},
		{Verb: "update", Group: "batch", Resource: "jobs"},
	} {
		if cp.allowed(t, namespace, name, a) {
			t.Errorf("manager %s/%s may %+v", namespace, name, a)
		}
	}
}

// expectRunnerHasNoAccess checks that stage pods' ServiceAccount can do
// nothing with the API, even in its own namespace.
func (cp *controlPlane) expectRunnerHasNoAccess(t *testing.T, namespace, name string) {
	t.Helper()
	for _, a := range []access{
		{Namespace: namespace, Verb: "get", Resource: "pods"},
		{Namespace: namespace, Verb: "list", Resource: "secrets"},
		{Namespace: namespace, Verb: "get", Resource: "configmaps"},
		{Namespace: namespace, Verb: "create", Group: "batch", Resource: "jobs"},
		{Namespace: namespace, Verb: "get", Group: "kompress.dev", Resource: "compressionjobs"},
		{Namespace: namespace, Verb: "patch", Group: "kompress.dev", Resource: "compressionjobs", Subresource: "status"},
		{Namespace: namespace, Verb: "create", Resource: "events"},
		{Namespace: namespace, Verb: "get", Group: "coordination.k8s.io", Resource: "leases"},
	} {
		if cp.allowed(t, namespace, name, a) {
			t.Errorf("runner %s/%s may %+v; it should have no API permissions", namespace, name, a)
		}
	}
}

// sampleFiles are config/samples/*.yaml but the kustomization.
func sampleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "config", "samples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatal("no samples in config/samples")
	}
	return out
}

// createSamples creates every CompressionJob of config/samples/*.yaml as
// written (unknown fields rejected) and checks the API server kept it.
func (cp *controlPlane) createSamples(t *testing.T, namespace string) {
	t.Helper()
	for _, file := range sampleFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeManifests(data)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		jobs := objs.ofKind("CompressionJob")
		if len(jobs) == 0 || len(jobs) != len(objs) {
			t.Errorf("%s: want only CompressionJobs, got %v", file, objs.ids())
		}
		for _, u := range jobs {
			var want kompressv1alpha1.CompressionJob
			if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &want, true); err != nil {
				t.Errorf("%s: does not match the Go API types: %v", file, err)
			}
			u.SetNamespace(namespace)
			if err := cp.client.Create(t.Context(), u, client.FieldValidation("Strict")); err != nil {
				t.Errorf("%s: the API server rejected CompressionJob %s: %v", file, u.GetName(), err)
				continue
			}
			var got kompressv1alpha1.CompressionJob
			cp.mustGet(t, namespace, u.GetName(), &got)
			if diff := cmp.Diff(stageNames(&want), stageNames(&got)); diff != "" {
				t.Errorf("%s: stages stored (-file +server):\n%s", file, diff)
			}
			if got.Spec.Source.URI != want.Spec.Source.URI || got.Spec.Output.URI != want.Spec.Output.URI {
				t.Errorf("%s: stored source/output %q/%q, file says %q/%q", file,
					got.Spec.Source.URI, got.Spec.Output.URI, want.Spec.Source.URI, want.Spec.Output.URI)
			}
		}
	}
}

func stageNames(j *kompressv1alpha1.CompressionJob) []string {
	var names []string
	for _, s := range j.Spec.Stages {
		names = append(names, s.Name+":"+string(s.Type))
	}
	return names
}

// expectSampleRejected breaks the first sample and expects the API server
// to refuse it with a message containing want: proof that samples are
// really validated, not waved through.
func (cp *controlPlane) expectSampleRejected(t *testing.T, namespace string, breakIt func(*unstructured.Unstructured), want string) {
	t.Helper()
	data, err := os.ReadFile(sampleFiles(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(data)
	if err != nil || len(objs) == 0 {
		t.Fatalf("decoding the first sample: %v", err)
	}
	u := objs[0]
	u.SetNamespace(namespace)
	u.SetName("broken-" + u.GetName())
	breakIt(u)
	err = cp.client.Create(t.Context(), u, client.FieldValidation("Strict"))
	if err == nil {
		t.Fatalf("the API server accepted a CompressionJob that should fail with %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("rejection lacks %q: %v", want, err)
	}
}

func mustSet(t *testing.T, u *unstructured.Unstructured, value string, fields ...string) {
	t.Helper()
	if err := unstructured.SetNestedField(u.Object, value, fields...); err != nil {
		t.Fatal(err)
	}
}

// The CRD upgrade path of docs/upgrading.md: charts/kompress-crds installs
// the CRD as a release object (so helm upgrade updates it), charts/kompress
// then installs with --skip-crds, and uninstalling the CRD chart leaves the
// CRD and its CompressionJobs in place.
func TestCRDChartInstallUpgradeUninstall(t *testing.T) {
	cp := startControlPlane(t)
	h := newHelm(t)
	crdChart := filepath.Join(filepath.Dir(chartDir(t)), "kompress-crds")
	h.mustRun(t, "install", "kompress-crds", crdChart, "--namespace", "kompress-system", "--create-namespace", "--kubeconfig", cp.kubeconfig)
	h.mustRun(t, "install", "kompress", chartDir(t), "--namespace", "kompress-system", "--skip-crds", "--kubeconfig", cp.kubeconfig)
	var crd apiextensionsv1.CustomResourceDefinition
	cp.mustGet(t, "", "compressionjobs.kompress.dev", &crd)
	if crd.Annotations["meta.helm.sh/release-name"] != "kompress-crds" || crd.Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("CRD annotations %v: want it owned by release kompress-crds and kept on uninstall", crd.Annotations)
	}
	cpj := &kompressv1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Name: "survivor", Namespace: "kompress-system"},
		Spec: kompressv1alpha1.CompressionJobSpec{
			Source: kompressv1alpha1.ModelSource{URI: "s3://b/m.onnx"}, Output: kompressv1alpha1.OutputSpec{URI: "s3://b/out"},
			Stages: []kompressv1alpha1.Stage{{Name: "int8", StageBody: kompressv1alpha1.StageBody{Type: kompressv1alpha1.StageTypeQuantize,
				Quantize: &kompressv1alpha1.QuantizeSpec{Method: kompressv1alpha1.QuantizeDynamic}}}},
		},
	}
	if err := cp.client.Create(t.Context(), cpj); err != nil {
		t.Fatal(err)
	}
	// helm upgrade applies the chart's CRD (a crds/ folder never is).
	h.mustRun(t, "upgrade", "kompress-crds", crdChart, "--namespace", "kompress-system", "--kubeconfig", cp.kubeconfig)
	h.mustRun(t, "uninstall", "kompress-crds", "--namespace", "kompress-system", "--kubeconfig", cp.kubeconfig)
	cp.mustGet(t, "", "compressionjobs.kompress.dev", &crd)
	if crd.DeletionTimestamp != nil {
		t.Error("helm uninstall kompress-crds deletes the CRD")
	}
	cp.mustGet(t, "kompress-system", "survivor", cpj)
}
