package prune

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/prune/structured"
)

func TestParse(t *testing.T) {
	tests := []struct {
		opts Options
		want options
	}{
		{Options{Method: Magnitude, Sparsity: 0.5},
			options{method: "magnitude", sparsity: 0.5, scope: "global", storage: "dense", samples: 512, dampening: 0.01, shards: 1}},
		{Options{Method: Magnitude, Sparsity: 0.75, Scope: ScopeLayer, Storage: Sparse, Seed: 3, MinParams: 100},
			options{method: "magnitude", sparsity: 0.75, scope: "layer", storage: "sparse", samples: 512, dampening: 0.01, shards: 1, seed: 3, minParams: 100}},
		{Options{Method: NM},
			options{method: "nm", n: 2, m: 4, scope: "layer", storage: "dense", samples: 512, dampening: 0.01, shards: 1}},
		{Options{Method: NM, Pattern: Pattern{N: 1, M: 4}, Criterion: structured.L2}, // criterion is structured's
			options{method: "nm", n: 1, m: 4, scope: "layer", storage: "dense", samples: 512, dampening: 0.01, shards: 1}},
		{Options{Method: Hessian, Pattern: Pattern{N: 1, M: 8}, CalibrationSamples: 64, Dampening: 0.1},
			options{method: "hessian", n: 1, m: 8, scope: "layer", storage: "dense", samples: 64, dampening: 0.1, shards: 1}},
		{Options{Method: Hessian, Sparsity: 0.7, ExcludeNodes: []string{"a"}, ExcludeOpTypes: []string{"Gemm"}},
			options{method: "hessian", sparsity: 0.7, scope: "layer", storage: "dense", samples: 512, dampening: 0.01, shards: 1,
				excludeNodes: map[string]bool{"a": true}, excludeOps: map[string]bool{"Gemm": true}}},
	}
	for _, tc := range tests {
		got, err := tc.opts.parse()
		if err != nil {
			t.Fatalf("%+v: %v", tc.opts, err)
		}
		if tc.want.excludeNodes == nil {
			tc.want.excludeNodes, tc.want.excludeOps = map[string]bool{}, map[string]bool{}
		}
		if diff := cmp.Diff(tc.want, *got, cmp.AllowUnexported(options{})); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.opts, diff)
		}
	}
}

func TestChannelOptions(t *testing.T) {
	tests := []struct {
		opts Options
		want structured.Options
	}{
		{Options{Method: Structured, Sparsity: 0.25},
			structured.Options{Fraction: 0.25, Criterion: structured.L1, Samples: 512}},
		{Options{Method: Structured, Sparsity: 0.2, Criterion: structured.Reconstruction, Scope: ScopeSensitivity, CalibrationSamples: 100,
			MinParams: 30, Seed: 4, ExcludeNodes: []string{"a"}, ExcludeOpTypes: []string{"Gemm"}, Dampening: 0.5},
			structured.Options{Fraction: 0.2, Criterion: structured.Reconstruction, Scope: structured.ScopeSensitivity, Samples: 100,
				MinParams: 30, Seed: 4, ExcludeNodes: []string{"a"}, ExcludeOpTypes: []string{"Gemm"}}},
		// Inputs (spec.evaluation.inputs) shape the probe run.
		{Options{Method: Structured, Sparsity: 0.25, Inputs: map[string]feed.Spec{"sr": {Shape: []int64{}}}},
			structured.Options{Fraction: 0.25, Criterion: structured.L1, Samples: 512,
				Inputs: map[string]feed.Spec{"sr": {Shape: []int64{}}}, InputsField: "evaluation.inputs"}},
		{Options{Method: Entropy, Sparsity: 0.25, Criterion: structured.L2, Scope: ScopeGlobal}, // the method is the criterion
			structured.Options{Fraction: 0.25, Criterion: structured.Entropy, Scope: structured.ScopeGlobal, Samples: 512}},
	}
	for _, tc := range tests {
		got, err := channelOptions(tc.opts)
		if err != nil {
			t.Fatalf("%+v: %v", tc.opts, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tc.opts, diff)
		}
	}
}

// TestOptionsErrors: options that cannot be applied fail Validate and
// Prune alike, with ErrSpec naming the field. (The model is never
// looked at: these fail first.)
func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		say  string
	}{
		{"no method", Options{Sparsity: 0.5}, `prune.method "" is not one of magnitude, nm, hessian, structured, entropy`},
		{"unknown method", Options{Method: "random", Sparsity: 0.5}, `prune.method "random" is not one of magnitude, nm, hessian, structured, entropy`},
		{"sparsity above 1", Options{Method: Magnitude, Sparsity: 1.5}, "prune.sparsity 1.5: want a fraction in (0, 1)"},
		{"sparsity 1", Options{Method: Hessian, Sparsity: 1}, "prune.sparsity 1: want a fraction in (0, 1)"},
		{"negative sparsity", Options{Method: Magnitude, Sparsity: -0.5}, "prune.sparsity -0.5: want a fraction in (0, 1)"},
		{"no sparsity", Options{Method: Magnitude}, "prune.sparsity is required for method magnitude"},
		{"N = M", Options{Method: NM, Pattern: Pattern{N: 4, M: 4}}, "prune.pattern 4:4: want N:M with 0 < N < M <= 64"},
		{"N > M", Options{Method: Hessian, Pattern: Pattern{N: 3, M: 2}}, "prune.pattern 3:2: want N:M with 0 < N < M <= 64"},
		{"N = 0", Options{Method: NM, Pattern: Pattern{M: 4}}, "prune.pattern 0:4: want N:M with 0 < N < M <= 64"},
		{"M above 64", Options{Method: NM, Pattern: Pattern{N: 1, M: 65}}, "prune.pattern 1:65: want N:M with 0 < N < M <= 64"},
		{"pattern for magnitude", Options{Method: Magnitude, Sparsity: 0.5, Pattern: Pattern{N: 2, M: 4}}, "prune.pattern is only used by methods nm and hessian (method magnitude takes sparsity)"},
		{"sparsity for nm", Options{Method: NM, Sparsity: 0.5}, `prune.sparsity is not used by method nm: set prune.pattern (default "2:4")`},
		{"hessian with both", Options{Method: Hessian, Sparsity: 0.5, Pattern: Pattern{N: 2, M: 4}}, "method hessian takes prune.sparsity (unstructured) or prune.pattern (N:M), exactly one of them"},
		{"hessian with neither", Options{Method: Hessian}, "method hessian takes prune.sparsity (unstructured) or prune.pattern (N:M), exactly one of them"},
		{"global hessian", Options{Method: Hessian, Sparsity: 0.5, Scope: ScopeGlobal}, "prune.scope global is only used by method magnitude (hessian works layer by layer)"},
		{"global nm", Options{Method: NM, Scope: ScopeGlobal}, "prune.scope global is only used by method magnitude (nm works layer by layer)"},
		{"sensitivity magnitude", Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeSensitivity}, "prune.scope sensitivity is only used by methods structured and entropy"},
		{"unknown scope", Options{Method: Magnitude, Sparsity: 0.5, Scope: "model"}, `prune.scope "model" is not layer, global or sensitivity`},
		{"unknown storage", Options{Method: Magnitude, Sparsity: 0.5, Storage: "zip"}, `prune.storage "zip" is not dense or sparse`},
		{"negative minParams", Options{Method: Magnitude, Sparsity: 0.5, MinParams: -1}, "prune.minParams is -1, expected 0 or more"},
		{"negative samples", Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: -1}, "prune.calibrationSamples is -1, expected at least 1"},
		{"dampening above 1", Options{Method: Hessian, Sparsity: 0.5, Dampening: 2}, "prune.dampening 2: want a fraction in (0, 1]"},
		{"three shards", Options{Method: Hessian, Sparsity: 0.5, Shards: 3}, "parallelism.shards 3: want a power of two from 1 to 16"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			verr := tc.opts.Validate()
			out, rep, err := Prune(t.Context(), nil, tc.opts, nil, nil)
			if !errors.Is(err, ErrSpec) || err.Error() != "invalid prune spec: "+tc.say {
				t.Errorf("error %v, want ErrSpec saying %q", err, tc.say)
			}
			if verr == nil || err == nil || verr.Error() != err.Error() {
				t.Errorf("Validate says %v, Prune %v", verr, err)
			}
			if out != nil || rep != nil {
				t.Errorf("a model or report came back with the error")
			}
		})
	}
}
