package chart

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// syncTree copies hack/sync-chart.sh and its inputs into a temporary
// checkout, so the script can run (and be broken) without touching this one.
func syncTree(t *testing.T) string {
	t.Helper()
	root, tmp := repoRoot(t), t.TempDir()
	copyFile(t, filepath.Join(root, "hack", "sync-chart.sh"), filepath.Join(tmp, "hack", "sync-chart.sh"))
	copyFile(t, filepath.Join(root, "config", "rbac", "role.yaml"), filepath.Join(tmp, "config", "rbac", "role.yaml"))
	crds, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(crds) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v): run `make manifests`", err)
	}
	for _, crd := range crds {
		copyFile(t, crd, filepath.Join(tmp, "config", "crd", "bases", filepath.Base(crd)))
	}
	// Stale CRD files the script must remove.
	writeFile(t, filepath.Join(tmp, "charts", "kompress", "crds", "stale.yaml"), "kind: Stale\n")
	writeFile(t, filepath.Join(tmp, "charts", "kompress-crds", "templates", "stale.yaml"), "kind: Stale\n")
	return tmp
}

func runSync(tree string) (string, error) {
	out, err := exec.Command("bash", filepath.Join(tree, "hack", "sync-chart.sh")).CombinedOutput()
	return string(out), err
}

// What hack/sync-chart.sh writes from config/ is what the chart holds: the
// committed chart is in sync (make verify checks the same by regenerating).
func TestSyncChartOutputMatchesChart(t *testing.T) {
	root, tree := repoRoot(t), syncTree(t)
	if out, err := runSync(tree); err != nil {
		t.Fatalf("hack/sync-chart.sh: %v\n%s", err, out)
	}
	want := chartFiles(t, filepath.Join(root, "charts", "kompress"))
	got := chartFiles(t, filepath.Join(tree, "charts", "kompress"))
	for name, content := range got {
		if diff := cmp.Diff(want[name], content); diff != "" {
			t.Errorf("charts/kompress/%s differs from what hack/sync-chart.sh writes; run `make manifests` (-committed +generated):\n%s", name, diff)
		}
	}
	for name := range want {
		if _, ok := got[name]; !ok {
			t.Errorf("charts/kompress/%s is not written by hack/sync-chart.sh from config/crd/bases", name)
		}
	}
	// charts/kompress-crds holds the same CRDs as templates, kept on
	// uninstall: the committed ones are what the script writes.
	wantCRDs, gotCRDs := crdChartFiles(t, root), crdChartFiles(t, tree)
	if diff := cmp.Diff(wantCRDs, gotCRDs); diff != "" {
		t.Errorf("charts/kompress-crds/templates differ from what hack/sync-chart.sh writes; run `make manifests` (-committed +generated):\n%s", diff)
	}
	for name, content := range gotCRDs {
		plain := strings.Replace(content, "  annotations:\n    helm.sh/resource-policy: keep\n", "  annotations:\n", 1)
		if plain == content || plain != got["crds/"+name] {
			t.Errorf("charts/kompress-crds/templates/%s is not crds/%s with helm.sh/resource-policy: keep", name, name)
		}
	}
	// Running it again changes nothing.
	if out, err := runSync(tree); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if diff := cmp.Diff(got, chartFiles(t, filepath.Join(tree, "charts", "kompress"))); diff != "" {
		t.Errorf("a second run changed the output (-first +second):\n%s", diff)
	}
}

// crdChartFiles reads charts/kompress-crds/templates of a tree.
func crdChartFiles(t *testing.T, tree string) map[string]string {
	t.Helper()
	files := map[string]string{}
	paths, err := filepath.Glob(filepath.Join(tree, "charts", "kompress-crds", "templates", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = string(data)
	}
	return files
}

// chartFiles reads the generated files: crds/*.yaml and the manager ClusterRole.
func chartFiles(t *testing.T, chart string) map[string]string {
	t.Helper()
	files := map[string]string{}
	crds, err := filepath.Glob(filepath.Join(chart, "crds", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append(crds, filepath.Join(chart, "templates", "manager-clusterrole.yaml")) {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(chart, p)
		files[rel] = string(data)
	}
	return files
}

func TestSyncChartRejectsUnexpectedRole(t *testing.T) {
	for _, tc := range []struct {
		name string
		role string // empty: no role.yaml at all
		want string
	}{
		{"missing role.yaml", "", "config/rbac/role.yaml not found"},
		{"namespaced Role beside the ClusterRole",
			"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\nrules: []\n---\n" +
				"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: manager-role\n  namespace: system\nrules: []\n",
			"must hold exactly one ClusterRole, found: kind:ClusterRole kind:Role"},
		{"no rules", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: manager-role\n",
			"has no rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := syncTree(t)
			role := filepath.Join(tree, "config", "rbac", "role.yaml")
			if tc.role == "" {
				if err := os.Remove(role); err != nil {
					t.Fatal(err)
				}
			} else {
				writeFile(t, role, tc.role)
			}
			out, err := runSync(tree)
			if err == nil {
				t.Fatalf("hack/sync-chart.sh succeeded, want an error containing %q; output:\n%s", tc.want, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("hack/sync-chart.sh output lacks %q:\n%s", tc.want, out)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
