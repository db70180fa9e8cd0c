package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// cli runs the kompress command in process and returns what it printed and
// the exit code main would use.
func cli(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := root()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	err := cmd.ExecuteContext(context.Background())
	if err != nil {
		errb.WriteString("kompress: " + err.Error() + "\n")
	}
	return out.String(), errb.String(), runner.ExitCode(err)
}

// sampleJob writes the mnist-int8 sample into a temporary directory with
// absolute file:// URIs, so tests never write into the checkout.
func sampleJob(t *testing.T, extra string) (jobFile, dir string) {
	t.Helper()
	dir = t.TempDir()
	for from, to := range map[string]string{
		"../../config/samples/models/mnist-8.onnx":    "mnist-8.onnx",
		"../../config/samples/data/mnist-test-1k.npz": "mnist.npz",
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	job := strings.NewReplacer(
		"file://./config/samples/models/mnist-8.onnx", storage.FileURI(filepath.Join(dir, "mnist-8.onnx")),
		"file://./config/samples/data/mnist-test-1k.npz", storage.FileURI(filepath.Join(dir, "mnist.npz")),
		"file://./out/mnist-int8", storage.FileURI(filepath.Join(dir, "out")),
	).Replace(readFile(t, "../../config/samples/mnist-int8.yaml")) + extra
	jobFile = filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile, dir
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeJob(t *testing.T, out string) *v1alpha1.CompressionJob {
	t.Helper()
	var job v1alpha1.CompressionJob
	if err := json.Unmarshal([]byte(out), &job); err != nil {
		t.Fatalf("-o json printed something else: %v\n%s", err, out)
	}
	return &job
}

func TestRunSampleThenReuse(t *testing.T) {
	orttest.Require(t)
	jobFile, _ := sampleJob(t, "")
	out, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "[1/1 int8] transform") || !strings.Contains(stderr, "1000/1000 samples") {
		t.Errorf("no stage progress on stderr:\n%s", stderr)
	}
	job := decodeJob(t, out)
	if job.Status.RunHash == "" || job.Status.RunHash != pipeline.RunHash(&job.Spec) {
		t.Errorf("status.runHash %q, want %q as the controller records it", job.Status.RunHash, pipeline.RunHash(&job.Spec))
	}
	if !meta.IsStatusConditionTrue(job.Status.Conditions, v1alpha1.ConditionReady) || job.Status.Progress != "1/1" {
		t.Fatalf("status is not Ready 1/1: %+v", job.Status)
	}
	o := job.Status.Output
	if o == nil || !strings.HasSuffix(o.URI, "/model.onnx") {
		t.Fatalf("status.output = %+v", o)
	}
	model, _, err := storage.ReadAll(context.Background(), o.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(model)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != o.Digest || int64(len(model)) != o.SizeBytes {
		t.Errorf("model at %s has digest %s and %d bytes; status says %s and %d", o.URI, got, len(model), o.Digest, o.SizeBytes)
	}
	acc, _ := strconv.ParseFloat(o.Metrics[pipeline.MetricAccuracy], 64)
	drop, _ := strconv.ParseFloat(o.Metrics[pipeline.MetricAccuracyDrop], 64)
	if acc < 0.98 || drop > 0.003 {
		t.Errorf("static int8 mnist-8: accuracy %v, drop %v; want >= 0.98 and <= 0.003", acc, drop)
	}
	if o.SizeBytes*2 > 26454 {
		t.Errorf("int8 model is %d bytes, not under half the 26454-byte source", o.SizeBytes)
	}

	again, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	job2 := decodeJob(t, again)
	if job2.Status.Stages[0].State != v1alpha1.StageCached || job2.Status.Output.Digest != o.Digest {
		t.Errorf("second run: stage %s digest %s, want Cached with %s", job2.Status.Stages[0].State, job2.Status.Output.Digest, o.Digest)
	}
	if strings.Contains(stderr, "transform") {
		t.Errorf("second run transformed again:\n%s", stderr)
	}
}

func TestRunSummaryAndYAML(t *testing.T) {
	orttest.Require(t)
	jobFile, _ := sampleJob(t, "")
	out, stderr, code := cli(t, "run", "-f", jobFile)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"STAGE", "int8", "Succeeded", "Ready=True", "output: file://", "digest: sha256:", "smaller than the source"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	// The reruns are cache hits: -o yaml and -o json print the same
	// CompressionJob (but for the clock), the one the summary described.
	yamlOut, _, code := cli(t, "run", "-f", jobFile, "-o", "yaml")
	if code != 0 || !strings.HasPrefix(yamlOut, "apiVersion: kompress.dev/v1alpha1\n") {
		t.Fatalf("-o yaml: exit %d\n%s", code, yamlOut)
	}
	var fromYAML v1alpha1.CompressionJob
	if err := yaml.UnmarshalStrict([]byte(yamlOut), &fromYAML); err != nil {
		t.Fatalf("-o yaml printed something else: %v", err)
	}
	jsonOut, _, _ := cli(t, "run", "-f", jobFile, "-o", "json")
	fromJSON := decodeJob(t, jsonOut)
	if diff := cmp.Diff(fromJSON, &fromYAML, cmpopts.IgnoreTypes(metav1.Time{}, &metav1.Time{})); diff != "" {
		t.Errorf("-o json and -o yaml differ (-json +yaml):\n%s", diff)
	}
	if o := fromYAML.Status.Output; o == nil || fromYAML.Status.ObservedGeneration != 1 ||
		!strings.Contains(out, "digest: "+o.Digest+"\n") || !strings.Contains(out, "output: "+o.URI+"\n") {
		t.Errorf("status.output %+v (observedGeneration %d) is not what the summary printed:\n%s", o, fromYAML.Status.ObservedGeneration, out)
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	jobFile, dir := sampleJob(t, "")
	bad := strings.Replace(readFile(t, jobFile), "method: static", "method: magic", 1)
	badFile := filepath.Join(dir, "bad.yaml")
	os.WriteFile(badFile, []byte(bad), 0o644)

	tests := []struct {
		name     string
		args     []string
		code     int
		contains string
	}{
		{"no file flag", []string{"run"}, pipeline.ExitUsage, "-f JOB.yaml is required"},
		{"missing file", []string{"run", "-f", filepath.Join(dir, "nope.yaml")}, pipeline.ExitUsage, "nope.yaml"},
		{"invalid spec", []string{"run", "-f", badFile}, pipeline.ExitUsage, "spec.stages[0].quantize.method"},
		{"bad output format", []string{"run", "-f", jobFile, "-o", "xml"}, pipeline.ExitUsage, "-o must be json or yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := cli(t, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.contains) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tc.code, tc.contains)
			}
		})
	}
}

func TestRunReportsAFailedStage(t *testing.T) {
	orttest.Require(t)
	jobFile, dir := sampleJob(t, "")
	os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), []byte("garbage"), 0o644)
	out, _, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != pipeline.ExitBadInput {
		t.Fatalf("exit %d, want %d", code, pipeline.ExitBadInput)
	}
	job := decodeJob(t, out)
	stalled := meta.FindStatusCondition(job.Status.Conditions, v1alpha1.ConditionStalled)
	if stalled == nil || stalled.Status != "True" || stalled.Reason != "BadInput" || !strings.Contains(stalled.Message, "mnist-8.onnx") {
		t.Errorf("Stalled condition = %+v", stalled)
	}
	if job.Status.Output != nil {
		t.Errorf("a failed run reports an output: %+v", job.Status.Output)
	}
}

// A run whose final model misses spec.acceptance fails (exit 65) as the
// controller reports it: Stalled with QualityGateFailed, the output kept.
func TestRunFailsAQualityGate(t *testing.T) {
	orttest.Require(t)
	jobFile, _ := sampleJob(t, "")
	gated := strings.Replace(readFile(t, jobFile), "  stages:\n", "  acceptance: {maxBytes: 100}\n  stages:\n", 1)
	if err := os.WriteFile(jobFile, []byte(gated), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != pipeline.ExitBadInput || !strings.Contains(stderr, "maxBytes") {
		t.Errorf("exit %d, stderr %q; want %d naming the missed gate", code, stderr, pipeline.ExitBadInput)
	}
	job := decodeJob(t, out)
	stalled := meta.FindStatusCondition(job.Status.Conditions, v1alpha1.ConditionStalled)
	if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != v1alpha1.ReasonQualityGateFailed || job.Status.Output == nil {
		t.Errorf("Stalled %+v, output %+v; want Stalled=True QualityGateFailed with the output kept", stalled, job.Status.Output)
	}
}

// stageTask plans the first stage of the sample job and writes the task
// where `kompress stage --task` reads it. The job is only parsed: nothing
// runs before the test runs the stage.
func stageTask(t *testing.T, jobFile, dir string) (pipeline.Task, string) {
	t.Helper()
	jobs, err := jobfile.ReadFile(jobFile)
	if err != nil {
		t.Fatal(err)
	}
	spec := &jobs[0].Spec
	task, err := pipeline.NewTask("ns/mnist", spec, 0, pipeline.SourceRef(spec), pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := task.Encode()
	if err != nil {
		t.Fatal(err)
	}
	taskFile := filepath.Join(dir, "task.json")
	if err := os.WriteFile(taskFile, []byte(enc), 0o644); err != nil {
		t.Fatal(err)
	}
	return task, taskFile
}

// readTermination decodes the termination message a stage wrote.
func readTermination(t *testing.T, path string) pipeline.Result {
	t.Helper()
	msg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > pipeline.MaxTerminationMessage {
		t.Errorf("termination message is %d bytes", len(msg))
	}
	res, err := pipeline.DecodeResult(msg)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// `kompress stage` runs the stage, writes the compact result to the
// termination message, and on a second run finds result.json and reports
// it as cached without writing anything.
func TestStageWritesTerminationMessageThenSkipsOnCache(t *testing.T) {
	orttest.Require(t)
	jobFile, dir := sampleJob(t, "")
	task, taskFile := stageTask(t, jobFile, dir)
	term := filepath.Join(dir, "termination-log")

	_, stderr, code := cli(t, "stage", "--task", taskFile, "--termination-log", term)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	res := readTermination(t, term)
	if err := res.Validate(task); err != nil || res.Details != nil || res.Cached {
		t.Errorf("termination message: validate %v, details %d bytes, cached %v; want a fresh result for the task without details", err, len(res.Details), res.Cached)
	}
	resultURI := pipeline.SiblingURI(res.Output.URI, pipeline.ResultFile)
	stored, _, err := storage.ReadAll(context.Background(), resultURI, "")
	if err != nil {
		t.Fatalf("result.json: %v", err)
	}
	if _, stdout, code := cli(t, "stage", "--validate-result", term, "--task", taskFile); code != 0 {
		t.Errorf("--validate-result rejected the runner's own result: %s", stdout)
	}

	_, stderr, code = cli(t, "stage", "--task", taskFile, "--termination-log", term)
	if code != 0 {
		t.Fatalf("second run: exit %d\n%s", code, stderr)
	}
	again := readTermination(t, term)
	if !again.Cached || again.Output.Digest != res.Output.Digest {
		t.Errorf("second run: cached %v, digest %s; want a cache hit on %s", again.Cached, again.Output.Digest, res.Output.Digest)
	}
	if strings.Contains(stderr, "transform") {
		t.Errorf("second run transformed again:\n%s", stderr)
	}
	if now, _, err := storage.ReadAll(context.Background(), resultURI, ""); err != nil || !bytes.Equal(now, stored) {
		t.Errorf("result.json changed on a cached run (%v)", err)
	}
}

// A failing stage exits with the code for its class of failure and says
// why in the termination message; a bad task does too.
func TestStageFailureTerminationMessage(t *testing.T) {
	jobFile, dir := sampleJob(t, "")
	_, taskFile := stageTask(t, jobFile, dir)
	term := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, code := cli(t, "stage", "--task", taskFile, "--termination-log", term)
	res := readTermination(t, term)
	if code != pipeline.ExitBadInput || res.Reason != "BadInput" || res.Output != nil || !strings.Contains(res.Message, "mnist-8.onnx") {
		t.Errorf("corrupt model: exit %d, result %+v; want %d, reason BadInput naming mnist-8.onnx, no output", code, res, pipeline.ExitBadInput)
	}
	if written, _ := filepath.Glob(filepath.Join(dir, "out", "*", "*")); len(written) > 0 {
		t.Errorf("a failed stage wrote %q", written)
	}

	if err := os.WriteFile(taskFile, []byte(`{"version":"kompress.dev/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, code = cli(t, "stage", "--task", taskFile, "--termination-log", term)
	if res := readTermination(t, term); code != pipeline.ExitUsage || res.Reason != "InvalidTask" || !strings.Contains(res.Message, "task.stage.name") {
		t.Errorf("bad task: exit %d, result %+v; want %d InvalidTask naming the field", code, res, pipeline.ExitUsage)
	}
}

func TestValidateResultRejects(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "result.json")
	os.WriteFile(f, []byte(`{"version":"kompress.dev/v1","stage":"s","cacheKey":"abc","output":{"uri":"s3://b/m.onnx","digest":"md5:1","sizeBytes":0}}`), 0o644)
	_, stderr, code := cli(t, "stage", "--validate-result", f)
	if code != pipeline.ExitBadInput {
		t.Fatalf("exit %d, want %d", code, pipeline.ExitBadInput)
	}
	for _, want := range []string{"cacheKey", "digest", "sizeBytes"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("error does not mention %s: %s", want, stderr)
		}
	}
}

func TestInspect(t *testing.T) {
	out, stderr, code := cli(t, "inspect", "../../config/samples/models/mnist-8.onnx")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"ai.onnx 7", "Input3 FLOAT [1 1 28 28]", "Conv 2", "MatMul 1", "parameters:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	// FLOAT8 and FLOAT4 weights are counted (Stats read them as float32
	// and failed).
	lowfloat := filepath.Join(t.TempDir(), "fp8.onnx")
	b, err := proto.Marshal(onnxtest.LowPrecisionFloats())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lowfloat, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = cli(t, "inspect", lowfloat)
	if code != 0 || !strings.Contains(out, "8 (non-zero 5, sparsity 37.50%)") || !regexp.MustCompile(`quantized parameters:\s+3\n`).MatchString(out) {
		t.Errorf("inspect of FLOAT8 weights: exit %d, want 8 parameters, 5 non-zero, 3 quantized:\n%s%s", code, out, stderr)
	}
	_, stderr, code = cli(t, "inspect", "main.go")
	if code != pipeline.ExitBadInput || !strings.Contains(stderr, "not a usable ONNX model") {
		t.Errorf("inspect of a Go file: exit %d, %s", code, stderr)
	}
}
