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
// points at an external file: it must be refused as bad input before
// ONNX Runtime resolves the path against the runner's working directory.
func TestSourceIsValidatedBeforeONNXRuntime(t *testing.T) {
	orttest.Require(t)
	spec, dir := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
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
	if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(res.Message, spec.Source.URI) || !strings.Contains(res.Message, `external file "weights.bin"`) {
		t.Fatalf("exit %d, message %q; want exit 65 naming %s and its external data file", ExitCode(err), res.Message, spec.Source.URI)
	}
	if ok, _ := storage.Exists(context.Background(), task.OutputURI); ok {
		t.Error("a model was published")
	}
}
