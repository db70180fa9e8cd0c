package runner

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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
		}), plus(map[string]string{"sourceBytes": "26454", "top1Agreement": "0.995", "cosine": "1"})},
		{"labels and source, model better than source", with(base, func(r *eval.Report) {
			r.SourceBytes, r.Labeled, r.Compared = 26454, true, true
			r.Accuracy, r.SourceAccuracy, r.Top1Agreement, r.Cosine = 0.989, 0.987, 0.99, 0.9987654
		}), plus(map[string]string{
			"sourceBytes": "26454", "accuracy": "0.989", "sourceAccuracy": "0.987", "accuracyDrop": "-0.002",
			"top1Agreement": "0.99", "cosine": "0.998765",
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
