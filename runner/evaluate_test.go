package runner

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/feed"
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

// spec.evaluation.inputs becomes feed's specs by input name: decimal
// strings into numbers, an empty shape into the declared one.
func TestInputSpecs(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name string
		ins  []v1alpha1.EvaluationInput
		want map[string]feed.Spec
		err  string
	}{
		{"none", nil, nil, ""},
		{"Silero VAD's three inputs", []v1alpha1.EvaluationInput{
			{Name: "input", Shape: []int64{512}, Range: []string{"-1", "1"}},
			{Name: "state", Shape: []int64{2, 1, 128}, Value: "0"},
			{Name: "sr", Value: "16000"},
			{Name: "x"},
		}, map[string]feed.Spec{
			"input": {Shape: []int64{512}, Range: &[2]float64{-1, 1}},
			"state": {Shape: []int64{2, 1, 128}, Value: f(0)},
			"sr":    {Value: f(16000)},
			"x":     {},
		}, ""},
		{"value and range", []v1alpha1.EvaluationInput{{Name: "x", Value: "1", Range: []string{"0", "1"}}}, nil,
			`evaluation.inputs["x"] sets value and range: set one of them`},
		{"a value that is no number", []v1alpha1.EvaluationInput{{Name: "sr", Value: "16k"}}, nil,
			`evaluation.inputs["sr"].value is "16k", not a decimal number`},
		{"an empty range", []v1alpha1.EvaluationInput{{Name: "x", Range: []string{"1", "1"}}}, nil,
			`evaluation.inputs["x"].range is [1, 1): it needs low < high`},
		{"a range of one value", []v1alpha1.EvaluationInput{{Name: "x", Range: []string{"1"}}}, nil,
			`evaluation.inputs["x"].range has 1 values: it is [low, high)`},
		{"a zero dimension", []v1alpha1.EvaluationInput{{Name: "x", Shape: []int64{3, 0}}}, nil,
			`evaluation.inputs["x"].shape is [3 0]: dims must be positive`},
		{"a name given twice", []v1alpha1.EvaluationInput{{Name: "x"}, {Name: "x"}}, nil,
			`evaluation.inputs["x"] is given twice`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := inputSpecs(tc.ins)
			if msg := errString(err); msg != tc.err {
				t.Fatalf("error %q, want %q", msg, tc.err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("specs (-want +got):\n%s", d)
			}
		})
	}
}
