package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/pipeline"
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
