package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/dataset/datasettest"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/storage"
)

// `kompress inspect` on each crafted model of issue 11 exits 65 with a
// message naming the file, the tensor and what was expected.
func TestInspectCraftedModels(t *testing.T) {
	dir := t.TempDir()
	for _, c := range onnxtest.CraftedModels() {
		t.Run(c.Name, func(t *testing.T) {
			path := filepath.Join(dir, c.Name+".onnx")
			if err := os.WriteFile(path, c.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := cli(t, "inspect", path)
			if code != pipeline.ExitBadInput || out != "" {
				t.Fatalf("exit %d, stdout %q; want %d and nothing printed", code, out, pipeline.ExitBadInput)
			}
			for _, want := range append([]string{path + " is not a usable ONNX model"}, c.Want...) {
				if !strings.Contains(stderr, want) {
					t.Errorf("error %q does not say %q", stderr, want)
				}
			}
		})
	}
}

// `kompress stage` on a crafted model (the MatMul weight of dims
// [2^31, 2^31] of issue 11) exits 65 and says why in the termination
// message, and publishes nothing.
func TestStageCraftedModel(t *testing.T) {
	c := onnxtest.CraftedModels()[0]
	jobFile, dir := sampleJob(t, "")
	task, taskFile := stageTask(t, jobFile, dir)
	term := filepath.Join(dir, "termination-log")
	if err := os.WriteFile(filepath.Join(dir, "mnist-8.onnx"), c.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, code := cli(t, "stage", "--task", taskFile, "--termination-log", term)
	res := readTermination(t, term)
	if code != pipeline.ExitBadInput || res.Reason != "BadInput" || res.Output != nil {
		t.Fatalf("exit %d, result %+v; want %d, reason BadInput, no output", code, res, pipeline.ExitBadInput)
	}
	for _, want := range append([]string{"mnist-8.onnx is not a usable ONNX model"}, c.Want...) {
		if !strings.Contains(res.Message, want) {
			t.Errorf("termination message %q does not say %q", res.Message, want)
		}
	}
	for _, uri := range []string{task.OutputURI, task.ResultURI()} {
		if ok, err := storage.Exists(context.Background(), uri); ok || err != nil {
			t.Errorf("%s was published for a failed stage (exists %v, %v)", uri, ok, err)
		}
	}
}

// `kompress stage` on a crafted dataset (a .npy header without its
// newline, on which the old parser panicked; the 2 GiB deflate bomb)
// exits 65 and says why in the termination message, naming the file,
// the entry and what was expected, and publishes nothing.
func TestStageCraftedDataset(t *testing.T) {
	cases := []datasettest.Crafted{datasettest.Files()[0], datasettest.Bombs()[1]}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			jobFile, dir := sampleJob(t, "")
			task, taskFile := stageTask(t, jobFile, dir)
			term := filepath.Join(dir, "termination-log")
			if err := os.WriteFile(filepath.Join(dir, "mnist.npz"), c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, _, code := cli(t, "stage", "--task", taskFile, "--termination-log", term)
			res := readTermination(t, term)
			if code != pipeline.ExitBadInput || res.Reason != "BadInput" || res.Output != nil {
				t.Fatalf("exit %d, result %+v; want %d, reason BadInput, no output", code, res, pipeline.ExitBadInput)
			}
			for _, want := range append([]string{task.Dataset.URI + `: entry "` + c.Entry + `": `}, c.Want...) {
				if !strings.Contains(res.Message, want) {
					t.Errorf("termination message %q does not say %q", res.Message, want)
				}
			}
			for _, uri := range []string{task.OutputURI, task.ResultURI()} {
				if ok, err := storage.Exists(context.Background(), uri); ok || err != nil {
					t.Errorf("%s was published for a failed stage (exists %v, %v)", uri, ok, err)
				}
			}
		})
	}
}

// The dataset limits come from the environment: lowered, they refuse the
// sample's 1,000 images; malformed, the stage refuses to start (exit 64)
// and says which variable in the termination message.
func TestStageDatasetLimitsFromEnv(t *testing.T) {
	tests := []struct {
		env      map[string]string
		wantCode int
		want     string
	}{
		{map[string]string{dataset.EnvMaxSamples: "999"}, pipeline.ExitBadInput, "1000 samples along the first dim, more than the 999 a dataset may hold"},
		{map[string]string{"KOMPRESS_MEMORY_LIMIT": "2000000"}, pipeline.ExitBadInput,
			"more than the 500000 bytes a dataset may hold (a quarter of the stage's memory limit of 2000000 bytes; $KOMPRESS_MAX_DATASET_BYTES sets it)"},
		{map[string]string{dataset.EnvMaxBytes: "lots"}, pipeline.ExitUsage, `$KOMPRESS_MAX_DATASET_BYTES is "lots", expected a positive number`},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			t.Setenv("GOMEMLIMIT", "off") // keep this test process's own limit
			jobFile, dir := sampleJob(t, "")
			_, taskFile := stageTask(t, jobFile, dir)
			term := filepath.Join(dir, "termination-log")
			_, _, code := cli(t, "stage", "--task", taskFile, "--termination-log", term)
			if res := readTermination(t, term); code != tc.wantCode || !strings.Contains(res.Message, tc.want) {
				t.Fatalf("exit %d, message %q; want %d saying %q", code, res.Message, tc.wantCode, tc.want)
			}
		})
	}
}
