package runner

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// fixture puts the bundled mnist-8 model and the 1k MNIST sample in a
// fresh directory and returns a job spec over them with the given stages.
// fixture is a job on copies of the sample model and dataset, both pinned
// by digest as a GitOps repository would pin them (unpinned returns the
// spec without the pins).
func fixture(t *testing.T, stages ...v1alpha1.Stage) (*v1alpha1.CompressionJobSpec, string) {
	t.Helper()
	dir := t.TempDir()
	model := copyFile(t, "../config/samples/models/mnist-8.onnx", filepath.Join(dir, "mnist-8.onnx"))
	data := copyFile(t, "../config/samples/data/mnist-test-1k.npz", filepath.Join(dir, "mnist.npz"))
	spec := &v1alpha1.CompressionJobSpec{
		Source:     v1alpha1.ModelSource{URI: storage.FileURI(filepath.Join(dir, "mnist-8.onnx")), SHA256: model},
		Output:     v1alpha1.OutputSpec{URI: storage.FileURI(filepath.Join(dir, "out"))},
		Dataset:    &v1alpha1.DatasetSpec{URI: storage.FileURI(filepath.Join(dir, "mnist.npz")), SHA256: data, Format: v1alpha1.DatasetFormatNPZ},
		Evaluation: v1alpha1.EvaluationSpec{Samples: 200, LatencyBatchSize: 1, LatencyRuns: 5},
		Stages:     stages,
	}
	return spec, dir
}

// unpinned drops the fixture's digest pins.
func unpinned(spec *v1alpha1.CompressionJobSpec) *v1alpha1.CompressionJobSpec {
	spec.Source.SHA256, spec.Dataset.SHA256 = "", ""
	return spec
}

// copyFile copies a file and returns its sha256 in hex.
func copyFile(t *testing.T, from, to string) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(storage.Digest(b), "sha256:")
}

func quantizeStageSpec(method v1alpha1.QuantizeMethod) v1alpha1.Stage {
	yes := true
	return v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{
		Method: method, Bits: 8, PerChannel: &yes, Symmetric: &yes, ActivationType: v1alpha1.ActivationUInt8,
		BlockSize: 32, Format: v1alpha1.FormatQDQ, IOType: v1alpha1.IOFloat32,
		Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationMinMax, Samples: 64, Percentile: "99.99"},
	}}}
}

func firstTask(t *testing.T, spec *v1alpha1.CompressionJobSpec) pipeline.Task {
	t.Helper()
	task, err := pipeline.NewTask("test/job", spec, 0, pipeline.SourceRef(spec), pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestExecutePublishesThenReusesFromCache(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeStatic))
	task := firstTask(t, spec)

	res, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatalf("Execute: %v (result %+v)", err, res)
	}
	if err := res.Validate(task); err != nil {
		t.Fatalf("result does not answer the task: %v", err)
	}
	if res.Cached {
		t.Error("first run reported a cache hit")
	}
	model, obj, err := storage.ReadAll(ctx, task.OutputURI, res.Output.Digest)
	if err != nil {
		t.Fatalf("published model does not match its reported digest: %v", err)
	}
	if obj.Size != res.Output.SizeBytes || int64(len(model)) != res.Output.SizeBytes {
		t.Errorf("reported size %d, stored %d", res.Output.SizeBytes, obj.Size)
	}
	for _, k := range []string{pipeline.MetricAccuracy, pipeline.MetricAccuracyDrop, pipeline.MetricTop1Agreement, pipeline.MetricCosine, pipeline.MetricMACs, pipeline.MetricLatencyP95Ms} {
		if _, ok := res.Output.Metrics[k]; !ok {
			t.Errorf("metric %s missing from %v", k, res.Output.Metrics)
		}
	}
	stored, _, err := storage.ReadAll(ctx, task.ResultURI(), "")
	if err != nil {
		t.Fatalf("result.json not written: %v", err)
	}
	if back, err := pipeline.DecodeResult(stored); err != nil || back.Output.Digest != res.Output.Digest {
		t.Fatalf("result.json = %s, %v", stored, err)
	}

	again, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Output.Digest != res.Output.Digest {
		t.Errorf("second run: cached=%v digest %s, want a cache hit on %s", again.Cached, again.Output.Digest, res.Output.Digest)
	}
}

func TestExecuteAdoptsAModelWrittenByAKilledRun(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	// A killed run left a complete model (here: the source's bytes) but no
	// result.json. It must be measured and kept, never replaced.
	src, _ := os.ReadFile(filepath.Join(dir, "mnist-8.onnx"))
	if _, err := storage.WriteBytes(ctx, task.OutputURI, src); err != nil {
		t.Fatal(err)
	}
	res, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Output.Digest != storage.Digest(src) {
		t.Errorf("result digest %s, want the existing model's %s", res.Output.Digest, storage.Digest(src))
	}
	if got := res.Output.Metrics[pipeline.MetricCosine]; got != "1" {
		t.Errorf("the adopted model is the source: cosine %s, want 1", got)
	}
}

func TestExecuteRejects(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		edit     func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string)
		code     int
		contains string
	}{
		{"corrupt model", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), []byte("not a model"), 0o644)
		}, pipeline.ExitBadInput, "not a usable ONNX model"},
		{"truncated model", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "mnist-8.onnx"))
			os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), b[:len(b)/2], 0o644)
		}, pipeline.ExitBadInput, "not a usable ONNX model"},
		{"missing source", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			spec.Source.URI = storage.FileURI(filepath.Join(dir, "nope.onnx"))
		}, pipeline.ExitNotFound, "nope.onnx"},
		{"digest pin mismatch", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			spec.Source.SHA256 = strings.Repeat("0", 64)
		}, pipeline.ExitBadInput, "sha256"},
		{"dataset of the wrong shape", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			copyFile(t, "../config/samples/models/mnist-8.onnx", filepath.Join(dir, "mnist.npz"))
		}, pipeline.ExitBadInput, "mnist.npz"},
		{"static without a dataset", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			spec.Dataset = nil
		}, pipeline.ExitBadInput, "spec.dataset"},
		{"missing dataset", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			spec.Dataset.URI = storage.FileURI(filepath.Join(dir, "gone.npz"))
		}, pipeline.ExitNotFound, "gone.npz"},
		{"no quantizable weights", func(t *testing.T, spec *v1alpha1.CompressionJobSpec, dir string) {
			writeModel(t, filepath.Join(dir, "mnist-8.onnx"), weightless())
		}, pipeline.ExitBadInput, "has no float weights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeStatic))
			tc.edit(t, unpinned(spec), dir)
			task := firstTask(t, spec)
			res, err := Execute(ctx, task, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if got := ExitCode(err); got != tc.code {
				t.Errorf("exit code %d, want %d (err: %v)", got, tc.code, err)
			}
			if !strings.Contains(res.Message, tc.contains) || res.Reason == "" || res.Output != nil {
				t.Errorf("result reason %q message %q, want a reason and a message mentioning %q", res.Reason, res.Message, tc.contains)
			}
			for _, uri := range []string{task.OutputURI, task.ResultURI()} {
				if ok, err := storage.Exists(ctx, uri); ok || err != nil {
					t.Errorf("%s was published for a failed stage (exists %v, %v)", uri, ok, err)
				}
			}
		})
	}
}

// weightless is a model with mnist-8's input and no weights at all
// (Relu, then Flatten): nothing to quantize.
func weightless() *onnx.Model {
	g := &onnxpb.GraphProto{
		Name:   proto.String("weightless"),
		Input:  []*onnxpb.ValueInfoProto{onnx.ValueInfo("Input3", onnx.Float, []onnx.Dim{int64(1), int64(1), int64(28), int64(28)})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, []onnx.Dim{int64(1), int64(784)})},
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("Relu", "relu", []string{"Input3"}, []string{"r"}),
			onnx.NewNode("Flatten", "flatten", []string{"r"}, []string{"y"}),
		},
	}
	return onnx.NewModel(g, 13)
}

func writeModel(t *testing.T, path string, m *onnx.Model) {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// An output bucket that does not exist is found out at the first write:
// permanent (66), reported as the output's fault, not the input's.
func TestExecuteMissingOutputBucket(t *testing.T) {
	orttest.Require(t)
	s3 := storagetest.StartS3(t, "models")
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	spec.Output.URI = s3.URI("no-such-bucket", "out")
	task := firstTask(t, spec)
	res, err := Execute(context.Background(), task, Options{})
	if ExitCode(err) != pipeline.ExitNotFound || res.Reason != "OutputNotFound" || !strings.Contains(res.Message, "no-such-bucket") {
		t.Errorf("exit %d, reason %q, message %q; want %d OutputNotFound naming the bucket", ExitCode(err), res.Reason, res.Message, pipeline.ExitNotFound)
	}
}

// A bucket the credentials may not use fails with 77 naming the URI, at
// the first call (the cache lookup), and nothing is written to it.
func TestExecuteDeniedBucket(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "models")
	for key, file := range map[string]string{"src/mnist-8.onnx": "../config/samples/models/mnist-8.onnx", "data/mnist.npz": "../config/samples/data/mnist-test-1k.npz"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := s3.Put("models", key, b); err != nil {
			t.Fatal(err)
		}
	}
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeStatic))
	spec.Source.URI = s3.URI("models", "src/mnist-8.onnx")
	spec.Dataset.URI = s3.URI("models", "data/mnist.npz")
	spec.Output.URI = s3.URI("models", "out")
	task := firstTask(t, spec)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")

	res, err := Execute(ctx, task, Options{})
	if ExitCode(err) != pipeline.ExitDenied || res.Reason != "AccessDenied" || !strings.Contains(res.Message, task.ResultURI()) {
		t.Errorf("exit %d, reason %q, message %q; want %d AccessDenied naming %s", ExitCode(err), res.Reason, res.Message, pipeline.ExitDenied, task.ResultURI())
	}
	keys, err := s3.Keys("models")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"data/mnist.npz", "src/mnist-8.onnx"}, keys); diff != "" {
		t.Errorf("objects in the bucket after a denied stage (-want +got):\n%s", diff)
	}
}

func TestExecuteLeavesAForeignResultUntouched(t *testing.T) {
	ctx := context.Background()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	junk := []byte(`{"version":"something else"}`)
	if _, err := storage.WriteBytes(ctx, task.ResultURI(), junk); err != nil {
		t.Fatal(err)
	}
	_, err := Execute(ctx, task, Options{})
	if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(err.Error(), "left untouched") {
		t.Fatalf("err = %v (exit %d), want a bad-input error saying the result is left untouched", err, ExitCode(err))
	}
	got, _, _ := storage.ReadAll(ctx, task.ResultURI(), "")
	if string(got) != string(junk) {
		t.Errorf("result.json was changed to %s", got)
	}
}

func TestExecuteRejectsAMalformedTask(t *testing.T) {
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	task.CacheKey = "short"
	_, err := Execute(context.Background(), task, Options{})
	if ExitCode(err) != pipeline.ExitUsage {
		t.Fatalf("exit code %d, want %d (err %v)", ExitCode(err), pipeline.ExitUsage, err)
	}
	var e *Error
	if !errors.As(err, &e) || e.Reason != "InvalidTask" {
		t.Errorf("reason: %v", err)
	}
}

// A stage interrupted while ONNX Runtime measures its output (the pod got
// SIGTERM, a deadline passed) is worth a retry: it must not be reported as
// a model ONNX Runtime rejected, and nothing may be published.
func TestExecuteInterruptedDuringEvaluation(t *testing.T) {
	orttest.Require(t)
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := Execute(ctx, task, Options{Progress: func(e Event) {
		if e.Phase == PhaseEvaluate && e.Message != "" {
			cancel()
		}
	}})
	if err == nil {
		t.Fatal("a cancelled stage succeeded")
	}
	if ExitCode(err) != pipeline.ExitFailure || res.Reason == "OutputRejected" || !errors.Is(err, context.Canceled) {
		t.Errorf("exit %d, reason %q, err %v; want a retryable failure (exit %d) caused by the cancellation", ExitCode(err), res.Reason, err, pipeline.ExitFailure)
	}
	for _, uri := range []string{task.OutputURI, task.ResultURI()} {
		if ok, err := storage.Exists(context.Background(), uri); ok || err != nil {
			t.Errorf("%s: exists %v (%v) after an interrupted stage", uri, ok, err)
		}
	}
}

// Without ONNX Runtime no output can be proven to run: the stage stops
// before the transform, says how to install it, and does not blame the model
// (exit 1, not 65). ONNX Runtime loads once per process, so the check runs
// in a child test process pointed at a library that does not exist.
func TestExecuteWithoutONNXRuntime(t *testing.T) {
	if os.Getenv("KOMPRESS_TEST_NO_ORT") == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestExecuteWithoutONNXRuntime$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), "KOMPRESS_TEST_NO_ORT=1", "ONNXRUNTIME_LIB="+filepath.Join(t.TempDir(), "libonnxruntime.so"))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestExecuteWithoutONNXRuntime") {
			t.Fatalf("child test: %v\n%s", err, out)
		}
		return
	}
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	var phases []Phase
	res, err := Execute(context.Background(), task, Options{Progress: func(e Event) { phases = append(phases, e.Phase) }})
	if ExitCode(err) != pipeline.ExitFailure || res.Reason != "RuntimeUnavailable" {
		t.Errorf("exit %d, reason %q; want %d RuntimeUnavailable (err %v)", ExitCode(err), res.Reason, pipeline.ExitFailure, err)
	}
	if !strings.Contains(res.Message, "make ort") || !strings.Contains(res.Message, "libonnxruntime.so") {
		t.Errorf("message %q does not say where the library was looked for and how to install it", res.Message)
	}
	if diff := cmp.Diff([]Phase{PhaseCache, PhaseRead, PhaseRead}, phases); diff != "" {
		t.Errorf("phases run without ONNX Runtime (-want +got):\n%s", diff)
	}
	if ok, err := storage.Exists(context.Background(), task.OutputURI); ok || err != nil {
		t.Errorf("model published without ONNX Runtime: exists %v, %v", ok, err)
	}
}

// A stage that falls short of its spec (2:4 on mnist-8, whose first
// convolution reads one channel, leaves 200 weights dense) returns the
// warning in its result and result.json, logs it, and its status says so.
func TestExecuteReportsWarnings(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, _ := fixture(t, v1alpha1.Stage{Name: "nm", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
		Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneNM, Pattern: "2:4"}}})
	task := firstTask(t, spec)
	var logged strings.Builder
	res, err := Execute(ctx, task, Options{Log: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pattern 2:4 left 200 weights dense (3.4% of the pruned layers'): the runs of input channels their groups take are not a multiple of 4 long"}
	if diff := cmp.Diff(want, res.Warnings); diff != "" {
		t.Errorf("result warnings (-want +got):\n%s", diff)
	}
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), "left 200 weights dense") {
		t.Errorf("warning not logged: %q", logged.String())
	}
	back := storedResult(ctx, t, task)
	if diff := cmp.Diff(want, back.Warnings); diff != "" {
		t.Errorf("result.json warnings (-want +got):\n%s", diff)
	}
	s := pipeline.StageStatusFromResult(v1alpha1.StageStatus{Name: "nm"}, task, res)
	if s.Reason != v1alpha1.ReasonSucceededWithWarnings || !cmp.Equal(pipeline.StageWarnings(s), want) {
		t.Errorf("stage status %s: %q, want the warning", s.Reason, s.Message)
	}
	again, err := Execute(ctx, task, Options{})
	if err != nil || !again.Cached || !cmp.Equal(again.Warnings, want) {
		t.Errorf("cached run: %v, cached %v, warnings %q; want the stored warnings", err, again.Cached, again.Warnings)
	}
}

// A static stage with smoothQuant publishes a model ONNX Runtime runs,
// and result.json's stage details say where the migration went: mnist-8's one
// MatMul with a weight reads a Reshape, so through an inserted Mul.
func TestExecuteSmoothQuantDetails(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	stage := quantizeStageSpec(v1alpha1.QuantizeStatic)
	stage.Quantize.SmoothQuant = &v1alpha1.SmoothQuant{Alpha: "0.5"}
	spec, _ := fixture(t, stage)
	task := firstTask(t, spec)
	if _, err := Execute(ctx, task, Options{}); err != nil {
		t.Fatal(err)
	}
	back := storedResult(ctx, t, task)
	var details struct {
		Stage struct {
			SmoothQuant struct {
				Alpha    float64
				Smoothed []struct{ Into string }
			}
		} `json:"stage"`
	}
	if err := json.Unmarshal(back.Details, &details); err != nil {
		t.Fatalf("details %s: %v", back.Details, err)
	}
	sq := details.Stage.SmoothQuant
	if sq.Alpha != 0.5 || len(sq.Smoothed) != 1 || !strings.HasPrefix(sq.Smoothed[0].Into, "inserted Mul") {
		t.Errorf("details.SmoothQuant = %+v, want alpha 0.5 and one input smoothed through an inserted Mul", sq)
	}
}

// storedResult reads back the result.json a task's run wrote.
func storedResult(ctx context.Context, t *testing.T, task pipeline.Task) pipeline.Result {
	t.Helper()
	stored, _, err := storage.ReadAll(ctx, task.ResultURI(), "")
	if err != nil {
		t.Fatal(err)
	}
	back, err := pipeline.DecodeResult(stored)
	if err != nil {
		t.Fatal(err)
	}
	return back
}
