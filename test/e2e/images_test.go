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

// image is one image the project ships.
type image struct {
	dockerfile string // relative to the checkout
	makeVar    string // the Makefile variable holding its name
	pkg        string // the Go command it builds
	binary     string // where that binary lives in the image
}

var images = []image{
	{"build/manager.Dockerfile", "MANAGER_IMAGE", "./cmd/manager", "/manager"},
	{"build/runner.Dockerfile", "RUNNER_IMAGE", "./cmd/kompress", "/usr/local/bin/kompress"},
}

// The images cannot be built here (no container engine). Instead: every
// file a Dockerfile copies from the build context exists and is not
// excluded by .dockerignore, every Go file its binary compiles from this
// module is copied, every file copied from another stage is produced there,
// and the binary ends up where the chart and the controller expect it.
func TestDockerfilesCopyWhatTheBuildNeeds(t *testing.T) {
	root := checkoutRoot()
	ignore := readDockerignore(t, filepath.Join(root, ".dockerignore"))
	goMod := readText(t, filepath.Join(root, "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(goMod)[1]
	for _, img := range images {
		t.Run(img.dockerfile, func(t *testing.T) {
			df := parseDockerfile(t, filepath.Join(root, img.dockerfile))
			build := df.stage("build")
			if build == nil {
				t.Fatal("no stage named build")
			}
			if want := "golang:" + goVersion + "-bookworm"; build.from != want {
				t.Errorf("build stage FROM %s, want %s (go.mod says go %s)", build.from, want, goVersion)
			}
			// Sources copied from the build context.
			var copied []string
			for _, c := range build.copies() {
				if c.from != "" {
					continue
				}
				for _, src := range c.srcs {
					src = strings.TrimSuffix(src, "/")
					if _, err := os.Stat(filepath.Join(root, src)); err != nil {
						t.Errorf("COPY %s: %v", src, err)
					}
					if ignore.excluded(src) {
						t.Errorf("COPY %s: excluded by .dockerignore", src)
					}
					copied = append(copied, src)
				}
			}
			// Every file of this module the binary compiles is copied.
			outputOf(t, build, img.pkg) // the build stage compiles the command
			for _, f := range moduleFiles(t, root, img.pkg) {
				if !under(f, copied) {
					t.Errorf("%s needs %s, which no COPY brings in (copied: %v)", img.pkg, f, copied)
				}
				if ignore.excluded(f) {
					t.Errorf("%s needs %s, which .dockerignore excludes", img.pkg, f)
				}
			}
			// Files copied from other stages are produced there.
			final := df.stages[len(df.stages)-1]
			gotBinary := false
			for _, c := range final.copies() {
				from := df.stage(c.from)
				if from == nil {
					t.Errorf("COPY --from=%s: no such stage", c.from)
					continue
				}
				for _, src := range c.srcs {
					if !from.runsToken(src) {
						t.Errorf("COPY --from=%s %s: no RUN of stage %s writes it", c.from, src, c.from)
					}
				}
				if c.dst == img.binary {
					gotBinary = true
				}
			}
			if !gotBinary {
				t.Errorf("the final stage does not put the binary at %s", img.binary)
			}
			if final.user() != "65532:65532" {
				t.Errorf("USER %q, want the distroless nonroot 65532:65532", final.user())
			}
		})
	}
}

// The runner image's ONNX Runtime is the one the runner is tested with:
// same version, same file of the npm package as `make ort` installs, and
// ONNXRUNTIME_LIB pointing at where it is copied.
func TestRunnerImageHasONNXRuntime(t *testing.T) {
	root := checkoutRoot()
	df := parseDockerfile(t, filepath.Join(root, "build/runner.Dockerfile"))
	st := df.stage("ort")
	if st == nil {
		t.Fatal("no stage named ort")
	}
	if v := st.args["ORT_VERSION"]; v != ort.Version {
		t.Errorf("ORT_VERSION %s, the runner is tested with ONNX Runtime %s", v, ort.Version)
	}
	const npmPath = "node_modules/onnxruntime-node/bin/napi-v6/linux/"
	if !st.runs(npmPath) || !strings.Contains(readText(t, filepath.Join(root, "hack/tools.sh")), npmPath) {
		t.Errorf("the Dockerfile and hack/tools.sh do not take libonnxruntime from the same place (%s)", npmPath)
	}
	if !st.runs("ONNXRUNTIME_NODE_INSTALL=skip") || !st.runs("--ignore-scripts") {
		t.Error("npm install without ONNXRUNTIME_NODE_INSTALL=skip and --ignore-scripts tries to download a CUDA add-on")
	}
	final := df.stages[len(df.stages)-1]
	lib := ""
	for _, c := range final.copies() {
		if c.from == "ort" {
			lib = c.dst
		}
	}
	if lib == "" || final.env["ONNXRUNTIME_LIB"] != lib {
		t.Errorf("ONNXRUNTIME_LIB=%q, the library is copied to %q", final.env["ONNXRUNTIME_LIB"], lib)
	}
}

// The chart runs the images the Makefile builds, the way they are built:
// the manager's command is the binary's path, the stage pods' command is on
// the runner image's PATH, and both run as the images' user.
func TestChartRunsTheImages(t *testing.T) {
	if testing.Short() {
		t.Skip("renders the chart with the pinned helm")
	}
	root := checkoutRoot()
	makefile := readText(t, filepath.Join(root, "Makefile"))
	names := map[string]string{}
	for _, img := range images {
		m := regexp.MustCompile(`(?m)^` + img.makeVar + ` \?= (\S+)$`).FindStringSubmatch(makefile)
		if m == nil {
			t.Fatalf("the Makefile does not set %s", img.makeVar)
		}
		names[img.dockerfile] = m[1]
		if !regexp.MustCompile(`docker build -f ` + regexp.QuoteMeta(img.dockerfile) + ` .*-t \$\(` + img.makeVar + `\):`).MatchString(makefile) {
			t.Errorf("make images does not build %s as $(%s)", img.dockerfile, img.makeVar)
		}
	}
	dep := renderDeployment(t, root)
	c := dep.Spec.Template.Spec.Containers[0]
	if repo := repository(c.Image); repo != names["build/manager.Dockerfile"] {
		t.Errorf("the chart runs manager image %s, the Makefile builds %s", repo, names["build/manager.Dockerfile"])
	}
	if diff := cmp.Diff([]string{images[0].binary}, c.Command); diff != "" {
		t.Errorf("manager command (-image +chart):\n%s", diff)
	}
	runnerImage := ""
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--runner-image="); ok {
			runnerImage = v
		}
	}
	if repo := repository(runnerImage); repo != names["build/runner.Dockerfile"] {
		t.Errorf("the chart gives stage pods image %s, the Makefile builds %s", repo, names["build/runner.Dockerfile"])
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
	onPath := path.Dir(images[1].binary)
	for _, pod := range []struct {
		name string
		cmd  []string
		user *int64
	}{
		{"stage", job.Spec.Template.Spec.Containers[0].Command, job.Spec.Template.Spec.SecurityContext.RunAsUser},
		{"cleanup", cleanup.Spec.Template.Spec.Containers[0].Command, cleanup.Spec.Template.Spec.SecurityContext.RunAsUser},
	} {
		if len(pod.cmd) == 0 || path.Join(onPath, pod.cmd[0]) != images[1].binary {
			t.Errorf("%s pods run %v; the runner image has %s on the PATH (%s)", pod.name, pod.cmd, path.Base(images[1].binary), onPath)
		}
		if pod.user == nil || *pod.user != 65532 {
			t.Errorf("%s pods run as user %v, the runner image's user is 65532", pod.name, pod.user)
		}
	}
}

// dockerfile is a parsed Dockerfile.
type dockerfile struct{ stages []*stage }

type stage struct {
	name, from string
	args, env  map[string]string
	lines      []instruction
}

type instruction struct{ cmd, rest string }

type copyInstr struct {
	from string
	srcs []string
	dst  string
}

func (d *dockerfile) stage(name string) *stage {
	for _, s := range d.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

func (s *stage) copies() []copyInstr {
	var out []copyInstr
	for _, l := range s.lines {
		if l.cmd != "COPY" {
			continue
		}
		var c copyInstr
		var words []string
		for _, w := range strings.Fields(l.rest) {
			if v, ok := strings.CutPrefix(w, "--from="); ok {
				c.from = v
				continue
			}
			words = append(words, w)
		}
		c.srcs, c.dst = words[:len(words)-1], words[len(words)-1]
		out = append(out, c)
	}
	return out
}

// runs reports whether a RUN of the stage contains text.
func (s *stage) runs(text string) bool {
	for _, l := range s.lines {
		if l.cmd == "RUN" && strings.Contains(l.rest, text) {
			return true
		}
	}
	return false
}

// runsToken reports whether a RUN of the stage has tok as a whole word (an
// output path of go build -o or cp).
func (s *stage) runsToken(tok string) bool {
	for _, l := range s.lines {
		if l.cmd != "RUN" {
			continue
		}
		for _, w := range strings.Fields(l.rest) {
			if w == tok {
				return true
			}
		}
	}
	return false
}

func (s *stage) user() string {
	u := ""
	for _, l := range s.lines {
		if l.cmd == "USER" {
			u = strings.TrimSpace(l.rest)
		}
	}
	return u
}

// outputOf is the -o path of the go build of pkg in the stage.
func outputOf(t *testing.T, s *stage, pkg string) string {
	t.Helper()
	for _, l := range s.lines {
		w := strings.Fields(l.rest)
		if l.cmd != "RUN" || !strings.Contains(l.rest, "go build") || w[len(w)-1] != pkg {
			continue
		}
		for i := range w[:len(w)-1] {
			if w[i] == "-o" {
				return w[i+1]
			}
		}
	}
	t.Errorf("no `go build -o OUT %s` in stage %s", pkg, s.name)
	return ""
}

var varRef = regexp.MustCompile(`\$\{(\w+)(:-[^}]*)?\}|\$(\w+)`)

// parseDockerfile reads instructions (joining continued lines), the ARGs
// and ENVs of each stage, and expands ${VAR} from them as docker does.
func parseDockerfile(t *testing.T, file string) *dockerfile {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	df := &dockerfile{}
	global := map[string]string{}
	var cur *stage
	var buf string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if buf == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			buf += cont + " "
			continue
		}
		line, buf = buf+line, ""
		cmd, rest, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		// FROM sees the ARGs before the first FROM; other instructions
		// their stage's ARGs and ENVs.
		vars := global
		if cur != nil && cmd != "FROM" {
			vars = cur.args
		}
		expand := func(s string) string {
			return varRef.ReplaceAllStringFunc(s, func(m string) string {
				sub := varRef.FindStringSubmatch(m)
				name, def := sub[1]+sub[3], strings.TrimPrefix(sub[2], ":-")
				if v, ok := vars[name]; ok && v != "" {
					return v
				}
				if cur != nil && cmd != "FROM" {
					if v, ok := cur.env[name]; ok {
						return v
					}
				}
				return def
			})
		}
		switch cmd {
		case "FROM":
			words := strings.Fields(expand(rest))
			cur = &stage{from: words[0], args: map[string]string{}, env: map[string]string{}}
			if len(words) == 3 && strings.EqualFold(words[1], "AS") {
				cur.name = words[2]
			}
			df.stages = append(df.stages, cur)
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			if cur == nil {
				global[name] = def
			} else if def != "" {
				cur.args[name] = def
			} else {
				cur.args[name] = global[name]
			}
		case "ENV":
			k, v, _ := strings.Cut(expand(rest), "=")
			cur.env[k] = v
		default:
			if cur == nil {
				t.Fatalf("%s: %s before FROM", file, cmd)
			}
			cur.lines = append(cur.lines, instruction{cmd, expand(rest)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(df.stages) == 0 {
		t.Fatalf("%s has no FROM", file)
	}
	return df
}

// dockerignore holds .dockerignore patterns: the last one that matches a
// path decides; a pattern matches a path or any of its parents; "**/X"
// matches X at any depth (X without a slash).
type dockerignore []string

func readDockerignore(t *testing.T, file string) dockerignore {
	t.Helper()
	var pats dockerignore
	for _, l := range strings.Split(readText(t, file), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			pats = append(pats, l)
		}
	}
	return pats
}

func (d dockerignore) excluded(p string) bool {
	out := false
	for _, pat := range d {
		neg := strings.HasPrefix(pat, "!")
		pat = strings.TrimPrefix(pat, "!")
		if matchIgnore(pat, p) {
			out = !neg
		}
	}
	return out
}

func matchIgnore(pat, p string) bool {
	parts := strings.Split(p, "/")
	if rest, ok := strings.CutPrefix(pat, "**/"); ok {
		for _, part := range parts {
			if m, _ := path.Match(rest, part); m {
				return true
			}
		}
		return false
	}
	for i := 1; i <= len(parts); i++ {
		if m, _ := path.Match(pat, strings.Join(parts[:i], "/")); m {
			return true
		}
	}
	return false
}

// moduleFiles lists, relative to the checkout, the files of this module a
// command compiles or embeds, and go.mod and go.sum.
func moduleFiles(t *testing.T, root, pkg string) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json", pkg)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v", pkg, err)
	}
	files := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir                                                   string
			Module                                                *struct{ Path string }
			GoFiles, CgoFiles, SFiles, HFiles, CFiles, EmbedFiles []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module == nil || p.Module.Path != "github.com/kompress/kompress" {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, list := range [][]string{p.GoFiles, p.CgoFiles, p.SFiles, p.HFiles, p.CFiles, p.EmbedFiles} {
			for _, f := range list {
				files = append(files, filepath.ToSlash(filepath.Join(rel, f)))
			}
		}
	}
	return files
}

func under(f string, dirs []string) bool {
	for _, d := range dirs {
		if f == d || strings.HasPrefix(f, d+"/") || (d == "." || d == "./") {
			return true
		}
	}
	return false
}

func repository(ref string) string {
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
