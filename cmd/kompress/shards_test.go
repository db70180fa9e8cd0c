package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// shardJob is the mnist-int8 sample calibrated by entropy, with a hessian
// prune stage before it and spec.parallelism.shards set.
func shardJob(t *testing.T, shards string) (jobFile, dir string) {
	t.Helper()
	jobFile, dir = sampleJob(t, "")
	job := strings.NewReplacer("method: minmax", "method: entropy", "  stages:\n", `  parallelism: {shards: `+shards+`}
  stages:
  - name: prune
    type: Prune
    prune: {method: hessian, sparsity: "0.6", calibrationSamples: 256}
`).Replace(readFile(t, jobFile))
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile, dir
}

// The target, locally: kompress run with 4 shards (4 workers
// accumulating the Hessians) writes the model 1 shard writes, to the
// digest.
func TestRunShardsGiveTheSameDigest(t *testing.T) {
	orttest.Require(t)
	digests := map[string]string{}
	for _, shards := range []string{"1", "4"} {
		jobFile, _ := shardJob(t, shards)
		digests[shards] = runDigest(t, jobFile, "shards "+shards)
	}
	if digests["4"] != digests["1"] {
		t.Errorf("4 shards wrote %s, 1 shard %s", digests["4"], digests["1"])
	}
}

// runDigest runs a job file with kompress run and returns its output's
// digest; what names the run in failures.
func runDigest(t *testing.T, jobFile, what string) string {
	t.Helper()
	out, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, code, stderr)
	}
	job := decodeJob(t, out)
	if job.Status.Output == nil {
		t.Fatalf("%s: no output", what)
	}
	return job.Status.Output.Digest
}

// More shards than samples is refused before any work, with the words the
// runner says in a pod.
func TestRunRefusesMoreShardsThanSamples(t *testing.T) {
	jobFile, dir := shardJob(t, "4")
	small := filepath.Join(dir, "three.npz")
	if err := dataset.WriteNPZFile(small, dataset.Array{Name: "x", Shape: []int{3, 1, 28, 28}, Data: make([]float32, 3*28*28)}); err != nil {
		t.Fatal(err)
	}
	job := strings.Replace(readFile(t, jobFile), storage.FileURI(filepath.Join(dir, "mnist.npz")), storage.FileURI(small), 1)
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := cli(t, "run", "-f", jobFile)
	want := pipeline.CheckShards(4, 3).Error()
	if code != pipeline.ExitBadInput || !strings.Contains(stderr, want) {
		t.Errorf("exit %d, stderr %q; want exit %d saying %q", code, stderr, pipeline.ExitBadInput, want)
	}
}
