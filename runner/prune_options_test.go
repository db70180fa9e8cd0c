package runner

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/jobfile"
	"github.com/kompress/kompress/runner/prune"
	"github.com/kompress/kompress/runner/prune/structured"
)

func TestPruneOptions(t *testing.T) {
	// What every translated spec carries unless it says otherwise: the
	// CRD's defaults.
	base := prune.Options{Criterion: structured.L1, Storage: prune.Dense, CalibrationSamples: 512, Dampening: 0.01}
	with := func(f func(o *prune.Options)) prune.Options {
		o := base
		f(&o)
		return o
	}
	tests := []struct {
		name string
		spec v1alpha1.PruneSpec
		want prune.Options
	}{
		{"magnitude: the scope is left to the method", v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"},
			with(func(o *prune.Options) { o.Method, o.Sparsity = prune.Magnitude, 0.5 })},
		{"keep is the sparsity it leaves, exactly", v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Keep: "0.3"},
			with(func(o *prune.Options) { o.Method, o.Sparsity = prune.Magnitude, 0.7 })},
		{"magnitude per layer, sparse, seeded", v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Keep: "0.25", Scope: v1alpha1.ScopeLayer,
			Storage: v1alpha1.StorageSparse, Seed: 3, MinParams: 100, Exclude: &v1alpha1.Exclusion{Nodes: []string{"a"}, OpTypes: []string{"Gemm"}}},
			with(func(o *prune.Options) {
				o.Method, o.Sparsity, o.Scope, o.Storage, o.Seed, o.MinParams = prune.Magnitude, 0.75, prune.ScopeLayer, prune.Sparse, 3, 100
				o.ExcludeNodes, o.ExcludeOpTypes = []string{"a"}, []string{"Gemm"}
			})},
		{"nm: the pattern is left to the method", v1alpha1.PruneSpec{Method: v1alpha1.PruneNM},
			with(func(o *prune.Options) { o.Method = prune.NM })},
		{"nm 1:4", v1alpha1.PruneSpec{Method: v1alpha1.PruneNM, Pattern: "1:4"},
			with(func(o *prune.Options) { o.Method, o.Pattern = prune.NM, prune.Pattern{N: 1, M: 4} })},
		{"hessian 1:8", v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Pattern: "1:8", CalibrationSamples: 64, Dampening: "0.1"},
			with(func(o *prune.Options) {
				o.Method, o.Pattern, o.CalibrationSamples, o.Dampening = prune.Hessian, prune.Pattern{N: 1, M: 8}, 64, 0.1
			})},
		{"hessian 70%, dampening 1", v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.7", Dampening: "1"},
			with(func(o *prune.Options) { o.Method, o.Sparsity, o.Dampening = prune.Hessian, 0.7, 1 })},
		{"structured, keep 0.75, l2", v1alpha1.PruneSpec{Method: v1alpha1.PruneStructured, Keep: "0.75", Criterion: v1alpha1.CriterionL2},
			with(func(o *prune.Options) { o.Method, o.Sparsity, o.Criterion = prune.Structured, 0.25, structured.L2 })},
		{"structured reconstruction, sensitivity", v1alpha1.PruneSpec{Method: v1alpha1.PruneStructured, Sparsity: "0.2",
			Criterion: v1alpha1.CriterionReconstruction, Scope: v1alpha1.ScopeSensitivity, CalibrationSamples: 100},
			with(func(o *prune.Options) {
				o.Method, o.Sparsity, o.Criterion, o.Scope, o.CalibrationSamples = prune.Structured, 0.2, structured.Reconstruction, prune.ScopeSensitivity, 100
			})},
		{"entropy global", v1alpha1.PruneSpec{Method: v1alpha1.PruneEntropy, Sparsity: "0.25", Scope: v1alpha1.ScopeGlobal},
			with(func(o *prune.Options) { o.Method, o.Sparsity, o.Scope = prune.Entropy, 0.25, prune.ScopeGlobal })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pruneOptions(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestPruneOptionsErrors: a spec that cannot be applied fails before any
// work, with prune.ErrSpec (bad input) naming the spec's field.
func TestPruneOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.PruneSpec
		say  string
	}{
		{"unknown method", v1alpha1.PruneSpec{Method: "random", Sparsity: "0.5"}, `prune.method "random" is not one of magnitude, nm, structured, entropy, hessian`},
		{"sparsity above 1", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "1.5"}, `prune.sparsity is "1.5", expected a decimal string in (0, 1), such as "0.5"`},
		{"sparsity 1", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "1"}, `prune.sparsity is "1", expected a decimal string in (0, 1), such as "0.5"`},
		{"sparsity 0", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0"}, `prune.sparsity is "0", expected a decimal string in (0, 1), such as "0.5"`},
		{"sparsity not a number", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "half"}, `prune.sparsity is "half", expected a decimal string in (0, 1), such as "0.5"`},
		{"sparsity in exponent form", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "5e-1"}, `prune.sparsity is "5e-1", expected a decimal string in (0, 1), such as "0.5"`},
		{"no sparsity", v1alpha1.PruneSpec{Method: "magnitude"}, "prune.sparsity (or keep) is required for method magnitude"},
		{"no channel sparsity", v1alpha1.PruneSpec{Method: "structured"}, "prune.sparsity (or keep), the fraction of channels removed, is required for method structured"},
		{"N = M", v1alpha1.PruneSpec{Method: "nm", Pattern: "4:4"}, `prune.pattern is "4:4", expected N:M with 0 < N < M <= 64, such as "2:4"`},
		{"N > M", v1alpha1.PruneSpec{Method: "hessian", Pattern: "3:2"}, `prune.pattern is "3:2", expected N:M with 0 < N < M <= 64, such as "2:4"`},
		{"N = 0", v1alpha1.PruneSpec{Method: "nm", Pattern: "0:4"}, `prune.pattern is "0:4", expected N:M with 0 < N < M <= 64, such as "2:4"`},
		{"not a pattern", v1alpha1.PruneSpec{Method: "nm", Pattern: "2/4"}, `prune.pattern is "2/4", expected N:M with 0 < N < M <= 64, such as "2:4"`},
		{"pattern for magnitude", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.5", Pattern: "2:4"}, "prune.pattern is only used by methods nm and hessian (method magnitude takes sparsity)"},
		{"pattern for structured", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.5", Pattern: "2:4"}, "prune.pattern is only used by methods nm and hessian (method structured takes sparsity)"},
		{"sparsity for nm", v1alpha1.PruneSpec{Method: "nm", Sparsity: "0.5"}, `prune.sparsity is not used by method nm: set prune.pattern (default "2:4")`},
		{"hessian with both", v1alpha1.PruneSpec{Method: "hessian", Sparsity: "0.5", Pattern: "2:4"}, "method hessian takes prune.sparsity (unstructured) or prune.pattern (N:M), exactly one of them"},
		{"global hessian", v1alpha1.PruneSpec{Method: "hessian", Sparsity: "0.5", Scope: "global"}, "prune.scope global is only used by method magnitude (hessian works layer by layer)"},
		{"unknown scope", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.5", Scope: "model"}, `prune.scope "model" is not layer, global or sensitivity`},
		{"keep and sparsity", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.5", Keep: "0.5"}, "prune.keep is the fraction kept: set it instead of prune.sparsity or prune.pattern, not with them"},
		{"keep and pattern", v1alpha1.PruneSpec{Method: "hessian", Pattern: "2:4", Keep: "0.5"}, "prune.keep is the fraction kept: set it instead of prune.sparsity or prune.pattern, not with them"},
		{"keep of 1", v1alpha1.PruneSpec{Method: "magnitude", Keep: "1"}, `prune.keep is "1", expected a decimal string in (0, 1), such as "0.5"`},
		{"dampening above 1", v1alpha1.PruneSpec{Method: "hessian", Sparsity: "0.5", Dampening: "2"}, `prune.dampening is "2", expected a decimal string in (0, 1], such as "0.5"`},
		{"unknown criterion", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.2", Criterion: "l3"}, `prune.criterion "l3" is not l1, l2 or reconstruction`},
		{"unknown storage", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.2", Storage: "zip"}, `prune.storage "zip" is not dense or sparse`},
		{"sparse channels", v1alpha1.PruneSpec{Method: "structured", Sparsity: "0.2", Storage: "sparse"}, "prune.storage sparse stores zeros compactly; method structured removes channels and leaves no zeros: use dense"},
		{"negative minParams", v1alpha1.PruneSpec{Method: "magnitude", Sparsity: "0.2", MinParams: -1}, "prune.minParams is -1, expected 0 or more"},
		{"negative samples", v1alpha1.PruneSpec{Method: "hessian", Sparsity: "0.2", CalibrationSamples: -1}, "prune.calibrationSamples is -1, expected at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pruneOptions(tc.spec)
			if !errors.Is(err, prune.ErrSpec) || ExitCode(err) != 65 {
				t.Fatalf("error %v (exit %d), want prune.ErrSpec (exit 65)", err, ExitCode(err))
			}
			if d := cmp.Diff("invalid prune spec: "+tc.say, err.Error()); d != "" {
				t.Errorf("message (-want +got):\n%s", d)
			}
		})
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

// TestPruneOptionsDefaults: the CRD's defaults and the runner's, for a
// task that did not come through the API server, agree.
func TestPruneOptionsDefaults(t *testing.T) {
	for _, body := range []string{
		`{method: magnitude, sparsity: "0.5"}`, `{method: nm}`, `{method: hessian, pattern: "2:4"}`,
		`{method: structured, keep: "0.8"}`, `{method: entropy, sparsity: "0.25"}`,
	} {
		job := defaulted(t, "  - {name: p, type: Prune, prune: "+body+"}\n")
		spec := *job.Spec.Stages[0].Prune
		fromCRD, err := pruneOptions(spec)
		if err != nil {
			t.Fatal(err)
		}
		bare, err := pruneOptions(v1alpha1.PruneSpec{Method: spec.Method, Sparsity: spec.Sparsity, Keep: spec.Keep, Pattern: spec.Pattern})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(fromCRD, bare); d != "" {
			t.Errorf("%s: the CRD's defaults (-) and the runner's (+) differ:\n%s", body, d)
		}
	}
}
