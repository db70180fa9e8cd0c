package prune

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/jobfile"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		spec v1alpha1.PruneSpec
		want options
	}{
		{v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.5"},
			options{method: "magnitude", sparsity: 0.5, scope: "global", storage: "dense", samples: 512, dampening: 0.01}},
		{v1alpha1.PruneSpec{Method: "magnitude", Keep: "0.25", Scope: "global", Storage: "sparse", Seed: 3, MinParams: 100},
			options{method: "magnitude", sparsity: 0.75, scope: "global", storage: "sparse", samples: 512, dampening: 0.01, seed: 3, minParams: 100}},
		{v1alpha1.PruneSpec{Method: "nm"},
			options{method: "nm", n: 2, m: 4, scope: "layer", storage: "dense", samples: 512, dampening: 0.01}},
		{v1alpha1.PruneSpec{Method: "hessian", Pattern: "1:8", CalibrationSamples: 64, Dampening: "0.1"},
			options{method: "hessian", n: 1, m: 8, scope: "layer", storage: "dense", samples: 64, dampening: 0.1}},
	}
	for _, tc := range tests {
		got, err := parseSpec(tc.spec)
		if err != nil {
			t.Fatalf("%+v: %v", tc.spec, err)
		}
		got.excludeNodes, got.excludeOps = nil, nil
		if diff := cmp.Diff(tc.want, *got, cmp.AllowUnexported(options{})); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestNormalizeKeep(t *testing.T) {
	for keep, want := range map[string]string{"0.7": "0.3", "0.25": "0.75", "0.999": "0.001", "0.5": "0.5", "0.1234567": "0.8765433"} {
		got, err := normalizeKeep(v1alpha1.PruneSpec{Method: "magnitude", Keep: keep})
		if err != nil || got.Sparsity != want || got.Keep != "" {
			t.Errorf("keep %s: sparsity %q keep %q err %v, want sparsity %s", keep, got.Sparsity, got.Keep, err, want)
		}
	}
}

// TestKeepInTheCRD checks prune.keep through the CRD's own validation
// (what kubectl apply and kompress run accept).
func TestKeepInTheCRD(t *testing.T) {
	job := func(prune string) string {
		return `
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: k}
spec:
  source: {uri: "file://./m.onnx"}
  output: {uri: "file://./out"}
  stages:
  - name: prune
    type: Prune
    prune: ` + prune + "\n"
	}
	tests := []struct {
		prune, err string
	}{
		{`{method: magnitude, keep: "0.3"}`, ""},
		{`{method: structured, keep: "0.8"}`, ""},
		{`{method: magnitude, keep: "0.3", sparsity: "0.7"}`, "prune: set keep or sparsity (or pattern), not more than one"},
		{`{method: hessian, keep: "0.5", pattern: "2:4"}`, "not more than one"},
		{`{method: magnitude, keep: "1.0"}`, "prune.keep must be a decimal string in (0, 1)"},
		{`{method: magnitude}`, "prune.sparsity is required"},
	}
	for _, tc := range tests {
		j, err := jobfile.Decode([]byte(job(tc.prune)))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.prune, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.prune, err, tc.err)
		case tc.err == "" && j.Spec.Stages[0].Prune.Keep == "":
			t.Errorf("%s: keep lost in decoding", tc.prune)
		}
	}
}
