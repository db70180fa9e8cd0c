package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort/orttest"
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
