package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
	"google.golang.org/protobuf/proto"
)

// TestCacheHitVerifiesTheArtifact tampers with a published model and
// reruns the task: the cache hit must not vouch for the new bytes, and
// the tampered file must be left as it is.
func TestCacheHitVerifiesTheArtifact(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	task := firstTask(t, spec)
	res, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "out", task.CacheKey, "model.onnx")
	for _, tamper := range []struct {
		name    string
		content []byte
	}{
		{"truncated to 4 bytes", []byte("junk")},
		{"same size, other bytes", make([]byte, res.Output.SizeBytes)},
	} {
		t.Run(tamper.name, func(t *testing.T) {
			if err := os.WriteFile(model, tamper.content, 0o644); err != nil {
				t.Fatal(err)
			}
			again, err := Execute(ctx, task, Options{})
			if ExitCode(err) != pipeline.ExitBadInput || again.Reason != "ArtifactChanged" || again.Cached {
				t.Fatalf("exit %d, reason %q, cached %v (err %v); want exit 65 ArtifactChanged", ExitCode(err), again.Reason, again.Cached, err)
			}
			for _, want := range []string{"artifact changed after it was written", task.OutputURI, res.Output.Digest} {
				if !strings.Contains(again.Message, want) {
					t.Errorf("message %q does not say %q", again.Message, want)
				}
			}
			if got, _ := os.ReadFile(model); string(got) != string(tamper.content) {
				t.Error("the tampered model was overwritten")
			}
		})
	}
}

// TestSourceIsValidatedBeforeONNXRuntime gives a stage a source model
// (the fidelity reference, read separately from its input) whose weight
// points at an external file that is not beside it: it must be refused
// as bad input, naming the file, before ONNX Runtime is given it.
func TestSourceIsValidatedBeforeONNXRuntime(t *testing.T) {
	orttest.Require(t)
	spec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	spec = unpinned(spec)
	raw, err := os.ReadFile(filepath.Join(dir, "mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	w := m.Proto.GetGraph().GetInitializer()[0]
	w.RawData, w.FloatData = nil, nil
	w.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	w.ExternalData = []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("weights.bin")}}
	hostile, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "source.onnx"), hostile, 0o644); err != nil {
		t.Fatal(err)
	}
	input := spec.Source.URI
	spec.Source.URI = storage.FileURI(filepath.Join(dir, "source.onnx"))
	task, err := pipeline.NewTask("test/job", spec, 0, pipeline.Ref{URI: input}, pipeline.Version)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Execute(context.Background(), task, Options{})
	if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(res.Message, spec.Source.URI) || !strings.Contains(res.Message, `external data "weights.bin"`) {
		t.Fatalf("exit %d, message %q; want exit 65 naming %s and its external data file", ExitCode(err), res.Message, spec.Source.URI)
	}
	if ok, _ := storage.Exists(context.Background(), task.OutputURI); ok {
		t.Error("a model was published")
	}
}

// TestUnpinnedInputsAreKeyedByContent runs a job whose source and dataset
// are not pinned: its artifacts must live under the key of their content,
// so replacing the source file gives a new run, not the stale artifact,
// and the same job pinned to the same content finds the same result.
func TestUnpinnedInputsAreKeyedByContent(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	pinnedSpec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	pinned := firstTask(t, pinnedSpec)
	spec := unpinned(pinnedSpec.DeepCopy())
	task := firstTask(t, spec)

	first, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Validate(task); err != nil {
		t.Fatalf("the result does not answer the task: %v", err)
	}
	if first.Output.URI != pinned.OutputURI || first.ContentKey != pinned.CacheKey || first.CacheKey != task.CacheKey {
		t.Errorf("output %s, content key %s, cache key %s; want the pinned task's output %s and key %s, and the plan key %s",
			first.Output.URI, first.ContentKey, first.CacheKey, pinned.OutputURI, pinned.CacheKey, task.CacheKey)
	}
	if again, err := Execute(ctx, task, Options{}); err != nil || !again.Cached || again.Output.Digest != first.Output.Digest {
		t.Errorf("unchanged rerun: cached %v digest %v (err %v), want the first result", again.Cached, again.Output, err)
	}
	if hit, err := Execute(ctx, pinned, Options{}); err != nil || !hit.Cached || hit.ContentKey != "" || hit.Validate(pinned) != nil {
		t.Errorf("the pinned task: cached %v, content key %q (err %v), want a hit on the same artifact answering it", hit.Cached, hit.ContentKey, err)
	}

	// Replace the source file with another model (another doc string is
	// enough to be other bytes).
	raw, err := os.ReadFile(filepath.Join(dir, "mnist-8.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Proto.DocString = proto.String("retrained")
	changed, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), changed, 0o644); err != nil {
		t.Fatal(err)
	}
	second, err := Execute(ctx, task, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Cached || second.ContentKey == first.ContentKey || second.Output.URI == first.Output.URI || second.Input.Digest != storage.Digest(changed) {
		t.Errorf("after replacing the source: cached %v, content key %s (was %s), input %s; want a new run on the new bytes",
			second.Cached, second.ContentKey, first.ContentKey, second.Input.Digest)
	}
}

// TestRenamedStageFindsItsResult renames a stage between two runs: the
// work is the same (the name is not part of the key), so the second run
// is a cache hit reported under the new name.
func TestRenamedStageFindsItsResult(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	if _, err := Execute(ctx, firstTask(t, spec), Options{}); err != nil {
		t.Fatal(err)
	}
	spec.Stages[0].Name = "renamed"
	task := firstTask(t, spec)
	res, err := Execute(ctx, task, Options{})
	if err != nil || !res.Cached || res.Stage != "renamed" || res.Validate(task) != nil {
		t.Errorf("cached %v, stage %q, err %v; want a cache hit answering the renamed stage", res.Cached, res.Stage, err)
	}
}
