package runner

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/eval"
)

func TestEvalMetrics(t *testing.T) {
	base := eval.Report{
		Bytes: 9000, Params: 5994, NonzeroParams: 2997, Sparsity: 0.5, MACs: 786560,
		Samples: 1000, LatencyP50: 1234567 * time.Nanosecond, LatencyP95: 2 * time.Millisecond, LatencyBatchSize: 8,
	}
	common := map[string]string{
		"bytes": "9000", "params": "5994", "nonzeroParams": "2997", "sparsity": "0.5", "macs": "786560",
		"samples": "1000", "latencyP50Ms": "1.235", "latencyP95Ms": "2", "latencyBatchSize": "8",
	}
	with := func(r eval.Report, edit func(*eval.Report)) eval.Report { edit(&r); return r }
	plus := func(extra map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range common {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name string
		rep  eval.Report
		want map[string]string
	}{
		{"no labels, no source", base, common},
		{"labels, no source: no fidelity, no drop", with(base, func(r *eval.Report) {
			r.Labeled, r.Accuracy = true, 0.987
		}), plus(map[string]string{"accuracy": "0.987"})},
		{"source, no labels: fidelity only", with(base, func(r *eval.Report) {
			r.SourceBytes, r.Compared, r.Top1Agreement, r.Cosine = 26454, true, 0.995, 0.99999951
			r.Outputs = []eval.OutputFidelity{{Name: "y", Kind: eval.OutputScores, Classes: 10, Positions: 1,
				Top1Agreement: 0.995, Cosine: 0.99999951, RelativeError: 0.00123456789, MaxAbsError: 12.3456789, SNRDb: 58.17}}
		}), plus(map[string]string{"sourceBytes": "26454", "top1Agreement": "0.995", "cosine": "1",
			"relativeError": "0.00123457", "maxAbsError": "12.3457", "snrDb": "58.17"})},
		{"labels and source, model better than source", with(base, func(r *eval.Report) {
			r.SourceBytes, r.Labeled, r.Compared = 26454, true, true
			r.Accuracy, r.SourceAccuracy, r.Top1Agreement, r.Cosine = 0.989, 0.987, 0.99, 0.9987654
			r.Outputs = []eval.OutputFidelity{{Name: "y", Kind: eval.OutputScores, Top1Agreement: 0.99, Cosine: 0.9987654, RelativeError: 0.05, MaxAbsError: 0.5, SNRDb: 26.0206}}
		}), plus(map[string]string{
			"sourceBytes": "26454", "accuracy": "0.989", "sourceAccuracy": "0.987", "accuracyDrop": "-0.002",
			"top1Agreement": "0.99", "cosine": "0.998765", "relativeError": "0.05", "maxAbsError": "0.5", "snrDb": "26.021",
		})},
		// One value per sample: no top-1 agreement, no cosine (both would
		// be 1 by construction); a tiny error keeps its digits.
		{"one-value output", with(base, func(r *eval.Report) {
			r.Compared = true
			r.Outputs = []eval.OutputFidelity{{Name: "39", Kind: eval.OutputValue, RelativeError: 0.7, MaxAbsError: 0.000001234567, SNRDb: 3.098}}
		}), plus(map[string]string{"relativeError": "0.7", "maxAbsError": "0.00000123457", "snrDb": "3.098"})},
		// Several outputs: the first output's under the plain names, then
		// every output's under its own name, and how many there are.
		{"several outputs", with(base, func(r *eval.Report) {
			r.Compared = true
			r.Outputs = []eval.OutputFidelity{
				{Name: "output", Kind: eval.OutputValue, RelativeError: 0.02, MaxAbsError: 0.01, SNRDb: 33.979},
				{Name: "stateN", Kind: eval.OutputSequence, Classes: 128, Positions: 2, Top1Agreement: 0.5, Cosine: 0.999, RelativeError: 0.04, MaxAbsError: 0.3, SNRDb: 27.9588},
			}
		}), plus(map[string]string{
			"outputs":       "2",
			"relativeError": "0.02", "maxAbsError": "0.01", "snrDb": "33.979",
			"relativeError[output]": "0.02", "maxAbsError[output]": "0.01", "snrDb[output]": "33.979",
			"top1Agreement[stateN]": "0.5", "cosine[stateN]": "0.999", "relativeError[stateN]": "0.04", "maxAbsError[stateN]": "0.3", "snrDb[stateN]": "27.959",
		})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, evalMetrics(tc.rep)); diff != "" {
				t.Errorf("metrics (-want +got):\n%s", diff)
			}
		})
	}
}

// A model with many outputs names as many as fit the termination
// message's budget, in order; the rest are in result.json only.
func TestEvalMetricsBoundsOutputs(t *testing.T) {
	r := eval.Report{Compared: true}
	for i := range 100 {
		r.Outputs = append(r.Outputs, eval.OutputFidelity{Name: fmt.Sprintf("detection_output_%02d", i), Kind: eval.OutputScores, Top1Agreement: 1, Cosine: 1, SNRDb: 200})
	}
	m := evalMetrics(r)
	size := 0
	for k, v := range m {
		size += len(k) + len(v) + 6
	}
	outs := pipeline.MetricOutputNames(m)
	if len(outs) == 0 || len(outs) >= 100 || size > 2048 {
		t.Fatalf("%d outputs named in %d bytes of metrics: want some, not all 100, within 2 KiB", len(outs), size)
	}
	for i, name := range outs {
		if want := fmt.Sprintf("detection_output_%02d", i); name != want {
			t.Errorf("output %d named is %q, want %q: outputs are named in order", i, name, want)
		}
	}
	if m["outputs"] != "100" {
		t.Errorf("outputs = %q, want 100", m["outputs"])
	}
}
