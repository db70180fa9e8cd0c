package chart

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const (
	helmVersion = "v3.22.0"
	k8sVersion  = "v1.37.2"
)

// repoRoot is the checkout this test file belongs to.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// cacheDir is where hack/tools.sh builds the pinned tools.
func cacheDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("KOMPRESS_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kompress")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("cannot find the tools cache: %v (set KOMPRESS_CACHE)", err)
	}
	return filepath.Join(home, ".cache", "kompress")
}

// helmBinary is the pinned helm, from $HELM or the tools cache.
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		path = filepath.Join(cacheDir(t), "tools", "helm-"+helmVersion)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("helm %s not found at %s: build it with `make tools-gen` (hack/tools.sh gen), or point HELM at a helm binary", helmVersion, path)
	}
	return path
}

// kubebuilderAssets is the folder holding kube-apiserver and etcd. It also
// sets KUBEBUILDER_ASSETS, which envtest reads.
func kubebuilderAssets(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		dir = filepath.Join(cacheDir(t), "k8s-"+k8sVersion)
	}
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
			t.Fatalf("%s not found in %s: build kube-apiserver and etcd with `make tools-k8s` (hack/tools.sh k8s), or set KUBEBUILDER_ASSETS", bin, dir)
		}
	}
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	return dir
}

// helm runs the pinned helm with its config, cache and data in a temporary
// folder, so tests neither read nor write the user's helm state.
type helm struct {
	bin  string
	home string
}

func newHelm(t *testing.T) *helm {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the pinned helm (make tools-gen); run without -short")
	}
	return &helm{bin: helmBinary(t), home: t.TempDir()}
}

// run returns helm's stdout, and an error carrying stderr when it fails.
func (h *helm) run(args ...string) (string, error) {
	cmd := exec.Command(h.bin, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(h.home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(h.home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(h.home, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &helmError{args: args, err: err, stderr: stderr.String(), stdout: stdout.String()}
	}
	return stdout.String(), nil
}

// mustRun fails the test when helm fails.
func (h *helm) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := h.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type helmError struct {
	args           []string
	err            error
	stdout, stderr string
}

func (e *helmError) Error() string {
	return "helm " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\nstderr:\n" + e.stderr + "\nstdout:\n" + e.stdout
}
