package runner

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/eval"
)

func TestEvalSettings(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.EvaluationSpec
		want eval.Settings
		err  string
	}{
		{"empty: the CRD's defaults", v1alpha1.EvaluationSpec{}, eval.Settings{LatencyBatchSize: 1, LatencyRuns: 50}, ""},
		{"every field", v1alpha1.EvaluationSpec{Samples: 200, LatencyBatchSize: 4, LatencyRuns: 5}, eval.Settings{Samples: 200, LatencyBatchSize: 4, LatencyRuns: 5}, ""},
		{"negative samples", v1alpha1.EvaluationSpec{Samples: -1}, eval.Settings{}, "evaluation.samples is -1, expected >= 0"},
		{"negative batch", v1alpha1.EvaluationSpec{LatencyBatchSize: -3}, eval.Settings{}, "evaluation.latencyBatchSize is -3, expected >= 1 (or 0 for the default 1)"},
		{"negative runs", v1alpha1.EvaluationSpec{LatencyRuns: -2}, eval.Settings{}, "evaluation.latencyRuns is -2, expected >= 1 (or 0 for the default 50)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := evalSettings(tc.spec)
			if msg := errString(err); msg != tc.err {
				t.Fatalf("error %q, want %q", msg, tc.err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("settings (-want +got):\n%s", d)
			}
		})
	}
}

// TestEvalSettingsDefaults: what the CRD fills in and what the runner
// fills in for a task that did not come through the API server agree.
func TestEvalSettingsDefaults(t *testing.T) {
	job := defaulted(t, "  - {name: q, type: Quantize, quantize: {method: dynamic}}\n")
	fromCRD, err := evalSettings(job.Spec.Evaluation)
	if err != nil {
		t.Fatal(err)
	}
	empty, err := evalSettings(v1alpha1.EvaluationSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(fromCRD, empty); d != "" {
		t.Errorf("the CRD's defaults (-) and the runner's (+) differ:\n%s", d)
	}
}
