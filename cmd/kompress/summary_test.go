package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

// The summary prints each stage's metrics as the status holds them:
// fractions as percentages, the accuracy drop in points, the rest as is,
// "-" for what was not measured; then how the output's size compares with
// the source's, whichever way it went.
func TestSummaryPrintsTheMetrics(t *testing.T) {
	metrics := func(bytes, source string) map[string]string {
		return map[string]string{
			"bytes": bytes, "sourceBytes": source, "params": "5994", "sparsity": "0.497165", "macs": "786560",
			"accuracy": "0.982", "accuracyDrop": "0.005", "top1Agreement": "0.988", "cosine": "0.987415", "relativeError": "0.15",
			"latencyP50Ms": "0.039", "latencyP95Ms": "0.059",
		}
	}
	tests := []struct {
		name   string
		size   int64
		source string
		row    []string
		sizeLn string
	}{
		{"smaller", 12135, "26454", []string{"prune", "Succeeded", "12135", "5994", "49.72%", "786560", "98.20%", "0.50pt", "98.80%", "0.987415", "0.15", "0.039", "0.059"},
			"size:   12135 bytes (2.18x smaller than the source's 26454)"},
		{"larger", 30000, "26454", []string{"prune", "Succeeded", "30000", "5994", "49.72%", "786560", "98.20%", "0.50pt", "98.80%", "0.987415", "0.15", "0.039", "0.059"},
			"size:   30000 bytes (1.13x larger than the source's 26454)"},
		{"same", 26454, "26454", []string{"prune", "Succeeded", "26454", "5994", "49.72%", "786560", "98.20%", "0.50pt", "98.80%", "0.987415", "0.15", "0.039", "0.059"},
			"size:   26454 bytes (the source's size)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := &v1alpha1.Artifact{URI: "file:///o/model.onnx", Digest: "sha256:ab", SizeBytes: tc.size, Metrics: metrics(strconv.FormatInt(tc.size, 10), tc.source)}
			job := &v1alpha1.CompressionJob{ObjectMeta: metav1.ObjectMeta{Name: "j"}}
			job.Status.Stages = []v1alpha1.StageStatus{
				{Name: "prune", State: v1alpha1.StageSucceeded, Output: out},
				{Name: "int8", State: v1alpha1.StagePending},
			}
			job.Status.Output = out
			var b bytes.Buffer
			if err := printSummary(&b, job); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(b.String(), "\n")
			if diff := cmp.Diff(tc.row, strings.Fields(lines[1])); diff != "" {
				t.Errorf("stage row (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff([]string{"int8", "Pending", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-", "-"}, strings.Fields(lines[2])); diff != "" {
				t.Errorf("pending row (-want +got):\n%s", diff)
			}
			if !strings.Contains(b.String(), "\n"+tc.sizeLn+"\n") {
				t.Errorf("summary lacks %q:\n%s", tc.sizeLn, b.String())
			}
		})
	}
}

// A model with several outputs: the summary says which output the
// table's fidelity columns are for and lists every output's; a model
// with one output prints no such list.
func TestSummaryNamesTheOutputs(t *testing.T) {
	several := map[string]string{
		"bytes": "1000", "outputs": "2",
		"relativeError": "0.02", "maxAbsError": "0.01", "snrDb": "33.979",
		"relativeError[output]": "0.02", "maxAbsError[output]": "0.01", "snrDb[output]": "33.979",
		"top1Agreement[stateN]": "0.5", "cosine[stateN]": "0.999", "relativeError[stateN]": "0.04", "maxAbsError[stateN]": "0.3", "snrDb[stateN]": "27.959",
	}
	tests := []struct {
		name    string
		metrics map[string]string
		want    []string
	}{
		{"several outputs", several, []string{
			`the model has 2 outputs: AGREEMENT, COSINE and REL ERROR are the first's ("output"); each output against the source's:`,
			"OUTPUT  AGREEMENT  COSINE  REL ERROR  MAX ABS ERROR  SNR DB",
			"output  -          -       0.02       0.01           33.979",
			"stateN  50.00%     0.999   0.04       0.3            27.959",
		}},
		{"one output", map[string]string{"bytes": "1000", "cosine": "1", "relativeError": "0"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := printOutputs(&b, tc.metrics); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				if l = strings.TrimRight(l, " "); l != "" {
					got = append(got, l)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
		})
	}
}

// A stage that fell short of its spec lists its warnings under the table;
// a stage without warnings prints none.
func TestSummaryPrintsStageWarnings(t *testing.T) {
	out := &v1alpha1.Artifact{URI: "file:///o/model.onnx", Digest: "sha256:ab", SizeBytes: 7}
	job := &v1alpha1.CompressionJob{ObjectMeta: metav1.ObjectMeta{Name: "j"}}
	job.Status.Stages = []v1alpha1.StageStatus{
		{Name: "prune", State: v1alpha1.StageSucceeded, Reason: v1alpha1.ReasonSucceeded, Message: "wrote file:///o/a/model.onnx", Output: out},
		{Name: "int4", State: v1alpha1.StageSucceeded, Reason: v1alpha1.ReasonSucceededWithWarnings, Output: out,
			Message: "wrote file:///o/b/model.onnx; warning: 2 weights kept at 8 bits; warning: 1 LSTM weight left in float"},
	}
	var b bytes.Buffer
	if err := printSummary(&b, job); err != nil {
		t.Fatal(err)
	}
	want := "\nstage int4 fell short of its spec:\n  - 2 weights kept at 8 bits\n  - 1 LSTM weight left in float\n"
	if !strings.Contains(b.String(), want) || strings.Contains(b.String(), "stage prune fell short") {
		t.Errorf("summary does not list int4's warnings (only):\n%s", b.String())
	}
}
