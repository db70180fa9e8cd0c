package runner

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/dataset/datasettest"
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

// TestExecuteRefusesCraftedDatasets runs a stage whose dataset is each
// crafted .npz of issue 11 (and the deflate bombs): the stage must fail
// as bad input (exit 65, reason BadInput) with a message naming the
// file, the entry and what was expected, and publish nothing.
func TestExecuteRefusesCraftedDatasets(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, c := range append(datasettest.Files(), datasettest.Bombs()...) {
		if c.Want == nil {
			continue // valid
		}
		t.Run(c.Name, func(t *testing.T) {
			spec, dir := fixture(t, v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
				Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}})
			path := filepath.Join(dir, c.String())
			if err := os.WriteFile(path, c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			spec.Dataset.URI, spec.Dataset.SHA256 = storage.FileURI(path), ""
			task := firstTask(t, spec)
			res, err := Execute(ctx, task, Options{Log: quiet})
			if code := ExitCode(err); code != pipeline.ExitBadInput || res.Reason != "BadInput" || res.Output != nil {
				t.Fatalf("exit %d, reason %q, output %v (%v); want %d BadInput and no output", code, res.Reason, res.Output, err, pipeline.ExitBadInput)
			}
			for _, want := range append([]string{task.Dataset.URI + `: entry "` + c.Entry + `": `}, c.Want...) {
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

// TestExecuteDatasetLimits: the limits a stage is given bound the
// dataset it reads: the MNIST sample (784,000 bytes of pixels, 1,000
// samples) is refused under lower ones, by the file's size before it is
// read, or by its arrays' headers; it is read within them.
func TestExecuteDatasetLimits(t *testing.T) {
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tests := []struct {
		name    string
		lim     dataset.Limits
		wantErr string
	}{
		{"file", dataset.Limits{MaxBytes: 1000}, ""},
		{"bytes", dataset.Limits{MaxBytes: 500_000, BytesFrom: "a test"},
			`mnist.npz: entry "x.npy": shape [1000 1 28 28] of uint8 needs 784000 bytes, more than the 500000 bytes a dataset may hold (a test; $KOMPRESS_MAX_DATASET_BYTES sets it)`},
		{"samples", dataset.Limits{MaxSamples: 999}, `mnist.npz: entry "x.npy": shape [1000 1 28 28]: 1000 samples along the first dim, more than the 999 a dataset may hold`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec, dir := fixture(t, v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
				Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}})
			if tc.wantErr == "" {
				// 2 MiB of noise stored: past the 1 MiB of headers a file
				// within 1,000 bytes of arrays may add.
				noise := make([]byte, 2<<20)
				rand.NewChaCha8([32]byte{1}).Read(noise)
				data := datasettest.Zip(datasettest.Entry{Name: "x.npy", Data: datasettest.V1(datasettest.Dict("|u1", "(2048, 1024)"), noise)})
				path := filepath.Join(dir, "noise.npz")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				spec.Dataset.URI, spec.Dataset.SHA256 = storage.FileURI(path), ""
				tc.wantErr = fmt.Sprintf("noise.npz: the file is %d bytes, more than an .npz within the 1000 bytes a dataset may hold ($KOMPRESS_MAX_DATASET_BYTES sets it) can take (%d bytes)",
					len(data), tc.lim.FileBytes())
			}
			res, err := Execute(ctx, firstTask(t, spec), Options{Log: quiet, DatasetLimits: tc.lim})
			if ExitCode(err) != pipeline.ExitBadInput || res.Reason != "BadInput" || !strings.Contains(res.Message, tc.wantErr) {
				t.Fatalf("exit %d, reason %q, message %q; want 65 BadInput saying %q", ExitCode(err), res.Reason, res.Message, tc.wantErr)
			}
		})
	}
}
