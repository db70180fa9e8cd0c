package main

import (
	"os"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/ort/orttest"
)

// layerJob is shardJob's hessian prune and entropy int8 with
// spec.parallelism set to parallelism.
func layerJob(t *testing.T, parallelism string) string {
	t.Helper()
	jobFile, _ := shardJob(t, "1")
	job := strings.Replace(readFile(t, jobFile), "parallelism: {shards: 1}", "parallelism: "+parallelism, 1)
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile
}

// kompress run with the hessian stage's blocks dealt to 3 workers, each
// calibrated on the original model's block inputs, writes the model one
// worker writes, to the digest; layers above 1 without layerInputs:
// Original is refused with the API server's words.
func TestRunLayerWorkersGiveTheSameDigest(t *testing.T) {
	orttest.Require(t)
	digests := map[string]string{}
	for _, layers := range []string{"1", "3"} {
		digests[layers] = runDigest(t, layerJob(t, "{layerInputs: Original, layers: "+layers+"}"), "layers "+layers)
	}
	if digests["3"] != digests["1"] {
		t.Errorf("3 layer workers wrote %s, 1 worker %s", digests["3"], digests["1"])
	}
	_, stderr, code := cli(t, "run", "-f", layerJob(t, "{layers: 2}"))
	want := "spec.parallelism.layers above 1 needs spec.parallelism.layerInputs: Original"
	if code == 0 || !strings.Contains(stderr, want) {
		t.Errorf("layers 2 without Original: exit %d, stderr %q; want it refused saying %q", code, stderr, want)
	}
}
