package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort"
)

// imageSpec is the part of build/NAME.image.json (hack/imagebuild's
// description of an image) the chart and the controller depend on.
type imageSpec struct {
	Repository string   `json:"repository"`
	User       string   `json:"user"`
	WorkingDir string   `json:"workingDir"`
	Entrypoint []string `json:"entrypoint"`
	Env        []string `json:"env"`
	Layers     []struct {
		Files []struct{ Src, Dst string } `json:"files"`
	} `json:"layers"`
}

func readImageSpec(t *testing.T, root, name string) imageSpec {
	t.Helper()
	var s imageSpec
	if err := json.Unmarshal([]byte(readText(t, filepath.Join(root, "build", name+".image.json"))), &s); err != nil {
		t.Fatalf("build/%s.image.json: %v", name, err)
	}
	return s
}

// dst is where the image puts the file built from src (a ${VAR}).
func (s imageSpec) dst(src string) string {
	for _, l := range s.Layers {
		for _, f := range l.Files {
			if f.Src == src {
				return f.Dst
			}
		}
	}
	return ""
}

func (s imageSpec) env(key string) string {
	for _, e := range s.Env {
		if v, ok := strings.CutPrefix(e, key+"="); ok {
			return v
		}
	}
	return ""
}

// The runner image's ONNX Runtime is the one the runner is tested with:
// hack/images.sh takes the version and the file from hack/tools.sh (`make
// ort`), and ONNXRUNTIME_LIB points at where the image puts it.
func TestRunnerImageHasONNXRuntime(t *testing.T) {
	root := checkoutRoot()
	tools := readText(t, filepath.Join(root, "hack/tools.sh"))
	if !strings.Contains(tools, "ORT_VERSION="+ort.Version+"\n") {
		t.Errorf("hack/tools.sh does not install ONNX Runtime %s, the version the runner is tested with", ort.Version)
	}
	images := readText(t, filepath.Join(root, "hack/images.sh"))
	for _, want := range []string{`sed -n 's/^ORT_VERSION=//p' "$root/hack/tools.sh"`, `"$root/hack/tools.sh" ort`, `ONNXRUNTIME_LIB=$("$root/hack/tools.sh" env`} {
		if !strings.Contains(images, want) {
			t.Errorf("hack/images.sh does not take ONNX Runtime from hack/tools.sh (%s)", want)
		}
	}
	spec := readImageSpec(t, root, "runner")
	lib := spec.dst("${ONNXRUNTIME_LIB}")
	if lib == "" || spec.env("ONNXRUNTIME_LIB") != lib {
		t.Errorf("ONNXRUNTIME_LIB=%q, the image puts the library at %q", spec.env("ONNXRUNTIME_LIB"), lib)
	}
}

// The chart runs the images make images builds, the way they are built:
// the manager's command is the binary's path, the stage pods' command is on
// the runner image's PATH, and both run as the images' user.
func TestChartRunsTheImages(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the chart with the pinned helm")
	}
	root := checkoutRoot()
	makefile := readText(t, filepath.Join(root, "Makefile"))
	script := readText(t, filepath.Join(root, "hack/images.sh"))
	names := map[string]string{}
	for name, v := range map[string]string{"manager": "MANAGER_IMAGE", "runner": "RUNNER_IMAGE"} {
		m := regexp.MustCompile(`(?m)^` + v + ` \?= (\S+)$`).FindStringSubmatch(makefile)
		if m == nil {
			t.Fatalf("the Makefile does not set %s", v)
		}
		names[name] = m[1]
		if !strings.Contains(script, v+"=${"+v+":-"+m[1]+"}") {
			t.Errorf("hack/images.sh does not default %s to the Makefile's %s", v, m[1])
		}
		if spec := readImageSpec(t, root, name); spec.Repository != "${"+v+"}" || spec.User != "65532:65532" || spec.WorkingDir == "" {
			t.Errorf("build/%s.image.json: repository %q user %q workdir %q; want ${%s}, 65532:65532 and a WORKDIR", name, spec.Repository, spec.User, spec.WorkingDir, v)
		}
	}
	manager, runner := readImageSpec(t, root, "manager"), readImageSpec(t, root, "runner")
	dep := renderDeployment(t, root)
	c := dep.Spec.Template.Spec.Containers[0]
	if repo := repository(c.Image); repo != names["manager"] {
		t.Errorf("the chart runs manager image %s, make images builds %s", repo, names["manager"])
	}
	if diff := cmp.Diff(manager.Entrypoint, c.Command); diff != "" || manager.dst("${MANAGER_BIN}") != c.Command[0] {
		t.Errorf("manager command (-image +chart):\n%s (the binary is at %s)", diff, manager.dst("${MANAGER_BIN}"))
	}
	runnerImage := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--runner-image="); ok {
			runnerImage = v
		}
	}
	if repo := repository(runnerImage); repo != names["runner"] {
		t.Errorf("the chart gives stage pods image %s, make images builds %s", repo, names["runner"])
	}
	if u := dep.Spec.Template.Spec.SecurityContext.RunAsUser; u == nil || *u != 65532 {
		t.Errorf("manager runAsUser %v, the image's user is 65532", u)
	}

	// Stage and cleanup pods, as the controller builds them.
	cpj := &v1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns"},
		Spec: v1alpha1.CompressionJobSpec{
			Source: v1alpha1.ModelSource{URI: "s3://b/m.onnx"}, Output: v1alpha1.OutputSpec{URI: "s3://b/out"},
			Stages: []v1alpha1.Stage{{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}}},
		},
	}
	task, err := pipeline.NewTask("ns/j", &cpj.Spec, 0, pipeline.SourceRef(&cpj.Spec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	d := controllers.StageDefaults{RunnerImage: runnerImage, ServiceAccount: "r", RunnerVersion: "v1"}
	job, err := controllers.BuildJob(controllers.StageJob{Owner: cpj, Task: task}, d)
	if err != nil {
		t.Fatal(err)
	}
	cleanup := controllers.BuildCleanupJob(cpj, []string{"s3://b/x"}, nil, nil, d, 1, time.Minute)
	binary := runner.dst("${KOMPRESS_BIN}")
	onPath := false
	for _, dir := range strings.Split(runner.env("PATH"), ":") {
		onPath = onPath || dir == path.Dir(binary)
	}
	if !onPath {
		t.Errorf("the runner image puts kompress at %s, not on its PATH %s", binary, runner.env("PATH"))
	}
	for _, pod := range []struct {
		name string
		cmd  []string
		user *int64
	}{
		{"stage", job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.SecurityContext.RunAsUser},
		{"cleanup", cleanup.Spec.Template.Spec.Containers[0].Command, cleanup.Spec.Template.Spec.SecurityContext.RunAsUser},
	} {
		if len(pod.cmd) == 0 || pod.cmd[0] != path.Base(binary) {
			t.Errorf("%s pods run %v; the runner image has %s on the PATH", pod.name, pod.cmd, path.Base(binary))
		}
		if pod.user == nil || *pod.user != 65532 {
			t.Errorf("%s pods run as user %v, the runner image's user is 65532", pod.name, pod.user)
		}
	}
}

func repository(ref string) string {
	if i := strings.LastIndex(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

func readText(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// renderDeployment renders the chart with default values and returns the
// manager Deployment.
func renderDeployment(t *testing.T, root string) *appsv1.Deployment {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		helm = filepath.Join(cacheRoot(t), "tools", "helm-v3.22.0")
	}
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("helm not found at %s: build it with `make tools-gen`, or set HELM", helm)
	}
	home := t.TempDir()
	cmd := exec.Command(helm, "template", "kompress", filepath.Join(root, "charts", "kompress"), "--namespace", "kompress-system")
	cmd.Env = append(os.Environ(), "HELM_CONFIG_HOME="+home, "HELM_CACHE_HOME="+home, "HELM_DATA_HOME="+home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var meta struct{ Kind string }
		if yaml.Unmarshal(doc, &meta) != nil || meta.Kind != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	t.Fatal("the chart renders no Deployment")
	return nil
}

func cacheRoot(t *testing.T) string {
	if d := os.Getenv("KOMPRESS_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "kompress")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(home, ".cache", "kompress")
}
