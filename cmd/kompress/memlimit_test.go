package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// TestMain lets a test run this binary as kompress itself (a real
// process, for limits that apply to a whole process).
func TestMain(m *testing.M) {
	if os.Getenv("KOMPRESS_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSelfCgroups(t *testing.T) {
	for _, tc := range []struct{ name, file, v2, v1 string }{
		{"v1", "12:memory:/kubepods/pod1/c1\n3:cpu,cpuacct:/kubepods/pod1/c1\n0::/\n", "/", "/kubepods/pod1/c1"},
		{"v1 shared", "4:cpuacct,memory:/a/b\n", "/", "/a/b"},
		{"v2", "0::/kubepods.slice/pod2\n", "/kubepods.slice/pod2", "/"},
		{"namespaced", "0::/\n", "/", "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "cgroup")
			if err := os.WriteFile(file, []byte(tc.file), 0o644); err != nil {
				t.Fatal(err)
			}
			v2, v1 := selfCgroups(file)
			if diff := cmp.Diff([]string{tc.v2, tc.v1}, []string{v2, v1}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadLimit(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int64
		ok   bool
	}{
		{"536870912\n", 536870912, true},
		{"max\n", 0, false},
		{"9223372036854771712\n", 0, false}, // v1's unlimited
		{"", 0, false},
	} {
		file := filepath.Join(t.TempDir(), "limit")
		if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		if v, ok := readLimit(file); v != tc.want || ok != tc.ok {
			t.Errorf("readLimit(%q) = %d, %v; want %d, %v", tc.text, v, ok, tc.want, tc.ok)
		}
	}
}

// memCgroup makes a cgroup v1 memory cgroup of limit bytes under the
// test's own, or skips the test where it cannot (not root, no v1 memory
// controller).
func memCgroup(t *testing.T, limit int64) string {
	t.Helper()
	_, v1 := selfCgroups("/proc/self/cgroup")
	parent := filepath.Join(cgroupRoot, "memory", v1)
	if _, err := os.Stat(filepath.Join(parent, "memory.limit_in_bytes")); err != nil {
		t.Skipf("no cgroup v1 memory controller here (%v): the limit is tested through KOMPRESS_MEMORY_LIMIT only", err)
	}
	dir := filepath.Join(parent, fmt.Sprintf("kompress-test-%d-%d", os.Getpid(), limit))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a memory cgroup (%v): run as root to test under a real limit", err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), []byte(fmt.Sprint(limit)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runLimited runs `kompress stage --task task` as a process of the
// cgroup, with no GOMEMLIMIT: the runner reads the cgroup's limit.
func runLimited(t *testing.T, cgroup, task string) (stderr string, code int, killed bool) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// The shell joins the cgroup, then becomes kompress: every byte
	// the stage allocates is charged to it.
	cmd := exec.Command("/bin/sh", "-c", `echo $$ > "$1/cgroup.procs" && exec "$2" stage --task "$3" --termination-log ""`, "sh", cgroup, self, task)
	cmd.Env = append(os.Environ(), "KOMPRESS_TEST_MAIN=1", "GOMEMLIMIT=", "KOMPRESS_MEMORY_LIMIT=")
	var errb strings.Builder
	cmd.Stderr = &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		ws := ee.Sys().(syscall.WaitStatus)
		return errb.String(), ee.ExitCode(), ws.Signaled()
	}
	if err != nil {
		t.Fatal(err)
	}
	return errb.String(), 0, false
}

// memDecoder writes a decoder of about 80 MB of weights, in model.onnx
// with model.onnx.data beside it, or (inline) in one file.
func memDecoder(t *testing.T, dir string, inline bool) {
	t.Helper()
	cfg := modelgen.DecoderConfig{Vocab: 2048, MaxPositions: 64, Hidden: 512, Heads: 8, Layers: 6, Seed: 1}
	if err := dataset.WriteNPZFile(filepath.Join(dir, "tokens.npz"), modelgen.DecoderTokens(cfg, 4, 16, 2)...); err != nil {
		t.Fatal(err)
	}
	if inline {
		if err := modelgen.Decoder(cfg).SaveFile(filepath.Join(dir, "model.onnx"), onnx.SaveOptions{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := modelgen.WriteDecoderExternal(cfg, filepath.Join(dir, "model.onnx")); err != nil {
		t.Fatal(err)
	}
}

func int4Task(t *testing.T, dir string) string {
	t.Helper()
	yes := true
	spec := &v1alpha1.CompressionJobSpec{
		Source:     v1alpha1.ModelSource{URI: storage.FileURI(filepath.Join(dir, "model.onnx"))},
		Output:     v1alpha1.OutputSpec{URI: storage.FileURI(filepath.Join(dir, "out"))},
		Dataset:    &v1alpha1.DatasetSpec{URI: storage.FileURI(filepath.Join(dir, "tokens.npz")), Format: v1alpha1.DatasetFormatNPZ},
		Evaluation: v1alpha1.EvaluationSpec{Samples: 4, LatencyBatchSize: 1, LatencyRuns: 1},
		Stages: []v1alpha1.Stage{{Name: "int4", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{
			Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Symmetric: &yes, BlockSize: 32, Format: v1alpha1.FormatMatMulNBits,
			SensitiveLayers: v1alpha1.SensitiveInt4, IOType: v1alpha1.IOFloat32,
		}}}},
	}
	task, err := pipeline.NewTask("test/job", spec, 0, pipeline.SourceRef(spec), pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(task)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "task.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Under a real cgroup v1 memory limit that is below what loading a model
// whole takes, a model with external data is streamed within it and
// published; the same model in one file is refused at once (exit 65,
// InsufficientMemory, naming the cgroup's limit); under a limit below
// what streaming takes, the model with external data is refused the same
// way, before a weight is read. No stage is killed by the kernel, and a
// refused stage writes nothing.
func TestStageUnderCgroupMemoryLimit(t *testing.T) {
	orttest.Require(t)
	const fits, tooSmall = 320 << 20, 120 << 20
	for _, tc := range []struct {
		name   string
		inline bool
		limit  int64
		code   int
	}{
		{"external data streams within the limit", false, fits, 0},
		{"one file is refused under the same limit", true, fits, pipeline.ExitBadInput},
		{"external data is refused below what streaming takes", false, tooSmall, pipeline.ExitBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			memDecoder(t, dir, tc.inline)
			cg := memCgroup(t, tc.limit)
			stderr, code, killed := runLimited(t, cg, int4Task(t, dir))
			if b, err := os.ReadFile(filepath.Join(cg, "memory.max_usage_in_bytes")); err == nil {
				t.Logf("peak memory of the stage's cgroup: %s bytes (limit %d)", strings.TrimSpace(string(b)), tc.limit)
			}
			if killed || code != tc.code {
				t.Fatalf("exit %d (killed by a signal: %v), want %d; stderr:\n%s", code, killed, tc.code, stderr)
			}
			_, published := os.Stat(filepath.Join(dir, "out"))
			if tc.code == 0 {
				if published != nil || !strings.Contains(stderr, "stage done") {
					t.Errorf("nothing published: %v\n%s", published, stderr)
				}
				return
			}
			if !strings.Contains(stderr, "InsufficientMemory") && !strings.Contains(stderr, "past the memory limit") ||
				!strings.Contains(stderr, "cgroup v1 memory.limit_in_bytes of "+cg) {
				t.Errorf("stderr does not name the cgroup's limit:\n%s", stderr)
			}
			if published == nil {
				t.Errorf("a refused stage wrote %s", filepath.Join(dir, "out"))
			}
		})
	}
}
