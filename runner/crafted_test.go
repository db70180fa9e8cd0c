package runner

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/storage"
)

// TestExecuteRefusesCraftedModels runs a stage on each crafted model of
// issue 11: the stage must fail as bad input (exit 65, reason BadInput)
// with a message naming the tensor and what was expected, and publish
// nothing. No ONNX Runtime is needed: the model is refused when read.
func TestExecuteRefusesCraftedModels(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range onnxtest.CraftedModels() {
		t.Run(c.Name, func(t *testing.T) {
			spec, dir := fixture(t, v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
				Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}})
			if err := os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), c.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			spec.Source.SHA256 = strings.TrimPrefix(storage.Digest(c.Bytes()), "sha256:") // pinned, as GitOps would
			task := firstTask(t, spec)
			res, err := Execute(ctx, task, Options{Log: quiet})
			if code := ExitCode(err); code != pipeline.ExitBadInput || res.Reason != "BadInput" || res.Output != nil {
				t.Fatalf("exit %d, reason %q, output %v (%v); want %d BadInput and no output", code, res.Reason, res.Output, err, pipeline.ExitBadInput)
			}
			for _, want := range append([]string{"mnist-8.onnx is not a usable ONNX model"}, c.Want...) {
				if !strings.Contains(res.Message, want) {
					t.Errorf("message %q does not say %q", res.Message, want)
				}
			}
			if _, terr := res.TerminationMessage(); terr != nil {
				t.Errorf("the failure does not fit a termination message: %v", terr)
			}
			for _, uri := range []string{task.OutputURI, task.ResultURI()} {
				if ok, err := storage.Exists(ctx, uri); ok || err != nil {
					t.Errorf("%s was published for a failed stage (exists %v, %v)", uri, ok, err)
				}
			}
		})
	}
}
