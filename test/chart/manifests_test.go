package chart

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// manifests is a set of rendered Kubernetes objects.
type manifests []*unstructured.Unstructured

// decodeManifests splits multi-document YAML into objects, skipping empty
// documents (a template that renders nothing).
func decodeManifests(data []byte) (manifests, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs manifests
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%w in document:\n%s", err, doc)
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "" || u.GetAPIVersion() == "" {
			return nil, fmt.Errorf("document without kind or apiVersion:\n%s", doc)
		}
		objs = append(objs, u)
	}
}

// readManifests decodes a YAML file of the repository.
func readManifests(t *testing.T, rel string) manifests {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifests(data)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return objs
}

// ids lists "Kind namespace/name" of every object, sorted.
func (m manifests) ids() []string {
	var ids []string
	for _, o := range m {
		ids = append(ids, objectID(o.GetKind(), o.GetNamespace(), o.GetName()))
	}
	sort.Strings(ids)
	return ids
}

func objectID(kind, namespace, name string) string {
	return kind + " " + namespace + "/" + name
}

// ofKind returns the objects of one kind.
func (m manifests) ofKind(kind string) manifests {
	var out manifests
	for _, o := range m {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// get converts the one object of this kind, namespace and name into out.
func (m manifests) get(t *testing.T, kind, namespace, name string, out any) {
	t.Helper()
	for _, o := range m {
		if o.GetKind() == kind && o.GetNamespace() == namespace && o.GetName() == name {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, out); err != nil {
				t.Fatalf("%s: %v", objectID(kind, namespace, name), err)
			}
			return
		}
	}
	t.Fatalf("%s not rendered; objects are:\n  %s", objectID(kind, namespace, name), strings.Join(m.ids(), "\n  "))
}

// onlyDeployment returns the one Deployment, the manager.
func (m manifests) onlyDeployment(t *testing.T) *appsv1.Deployment {
	t.Helper()
	deps := m.ofKind("Deployment")
	if len(deps) != 1 {
		t.Fatalf("want one Deployment, got %d: %v", len(deps), m.ids())
	}
	var d appsv1.Deployment
	m.get(t, "Deployment", deps[0].GetNamespace(), deps[0].GetName(), &d)
	return &d
}

// managerArgs returns the args of the manager container.
func managerArgs(t *testing.T, d *appsv1.Deployment) []string {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return c.Args
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return nil
}

// flagNames returns the flag names of --name=value and --name arguments, sorted.
func flagNames(t *testing.T, args []string) []string {
	t.Helper()
	var names []string
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			t.Fatalf("argument %q is not a --flag", a)
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// generatedRules are the rules controller-gen wrote to config/rbac/role.yaml
// from the controller's markers: the manager's permissions everywhere.
func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	objs := readManifests(t, "config/rbac/role.yaml")
	if len(objs) != 1 || objs[0].GetKind() != "ClusterRole" {
		t.Fatalf("config/rbac/role.yaml: want one ClusterRole, got %v (run `make manifests`)", objs.ids())
	}
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, &role); err != nil {
		t.Fatalf("config/rbac/role.yaml: %v", err)
	}
	if len(role.Rules) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules: the controller needs +kubebuilder:rbac markers (then `make manifests`)")
	}
	return role.Rules
}

// leaderElectionRules is what controller-runtime's leader election needs.
var leaderElectionRules = []rbacv1.PolicyRule{
	{
		APIGroups: []string{"coordination.k8s.io"},
		Resources: []string{"leases"},
		Verbs:     []string{"get", "list", "watch", "create", "update", "patch", "delete"},
	},
	{
		APIGroups: []string{"", "events.k8s.io"},
		Resources: []string{"events"},
		Verbs:     []string{"create", "patch"},
	},
}

// allManagerFlags are the manager's flags (cmd/manager); the values file
// test/chart/testdata/all-values.yaml makes the chart render every one.
var allManagerFlags = []string{
	"allowed-service-accounts",
	"custom-stage-images",
	"custom-stages",
	"health-probe-bind-address",
	"image-pull-stall-after",
	"leader-elect",
	"leader-election-namespace",
	"max-concurrent-reconciles",
	"metrics-bind-address",
	"metrics-secure",
	"runner-image",
	"runner-image-pull-policy",
	"runner-service-account",
	"runner-version",
	"stage-cpu-limit",
	"stage-cpu-request",
	"stage-ephemeral-storage-limit",
	"stage-ephemeral-storage-request",
	"stage-memory-limit",
	"stage-memory-request",
	"stage-node-selector",
	"stage-tolerations",
	"watch-namespace",
	"zap-encoder",
	"zap-log-level",
}
