package pipeline

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestCheckGates(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	cases := []struct {
		name    string
		gates   *v1alpha1.AcceptanceSpec
		metrics map[string]string
		want    []string
	}{
		{"no acceptance", nil, nil, nil},
		{"all pass", &v1alpha1.AcceptanceSpec{
			MaxAccuracyDrop: "0.01", MinTop1Agreement: "0.99", MinCosine: "0.995", MaxBytes: i64(10000),
			MaxLatency: &metav1.Duration{Duration: 20 * time.Millisecond},
		}, map[string]string{
			MetricAccuracyDrop: "0.01", MetricTop1Agreement: "0.99", MetricCosine: "0.999", MetricBytes: "10000", MetricLatencyP95Ms: "19.5",
		}, nil},
		{"every gate missed, in order", &v1alpha1.AcceptanceSpec{
			MaxAccuracyDrop: "0.01", MinTop1Agreement: "0.99", MinCosine: "0.995", MaxBytes: i64(10000),
			MaxLatency: &metav1.Duration{Duration: 1500 * time.Microsecond},
		}, map[string]string{
			MetricAccuracyDrop: "0.02", MetricTop1Agreement: "0.9", MetricCosine: "0.5", MetricBytes: "10001", MetricLatencyP95Ms: "2",
		}, []string{
			"maxAccuracyDrop: accuracyDrop 0.02 is above 0.01",
			"minTop1Agreement: top1Agreement 0.9 is below 0.99",
			"minCosine: cosine 0.5 is below 0.995",
			"maxBytes: bytes 10001 is above 10000",
			"maxLatency: latencyP95Ms 2 is above 1.5",
		}},
		{"unmeasured metric misses its gate", &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}, map[string]string{MetricBytes: "1"},
			[]string{"maxAccuracyDrop: metric accuracyDrop was not measured"}},
		{"garbled metric misses its gate", &v1alpha1.AcceptanceSpec{MinCosine: "0.9"}, map[string]string{MetricCosine: "NaN?"},
			[]string{`minCosine: metric cosine = "NaN?" is not a number`}},
		{"NaN and infinite metrics miss their gates", &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01", MinCosine: "0.9", MaxBytes: i64(5)},
			map[string]string{MetricAccuracyDrop: "NaN", MetricCosine: "+Inf", MetricBytes: "-inf"},
			[]string{`maxAccuracyDrop: metric accuracyDrop = "NaN" is not a number`, `minCosine: metric cosine = "+Inf" is not a number`,
				`maxBytes: metric bytes = "-inf" is not a number`}},
		{"relative error and SNR gates", &v1alpha1.AcceptanceSpec{MaxRelativeError: "0.01", MinSnrDb: "40"},
			map[string]string{MetricRelativeError: "0.7", MetricSNRDb: "3.098"},
			[]string{"maxRelativeError: relativeError 0.7 is above 0.01", "minSnrDb: snrDb 3.098 is below 40"}},
		{"relative error and SNR gates pass", &v1alpha1.AcceptanceSpec{MaxRelativeError: "0.01", MinSnrDb: "-3"},
			map[string]string{MetricRelativeError: "0.01", MetricSNRDb: "-2.5"}, nil},
		// A one-value output has no cosine: the gate is missed, and says
		// which gate measures such outputs.
		{"cosine gate on a one-value output", &v1alpha1.AcceptanceSpec{MinCosine: "0.99"},
			map[string]string{MetricRelativeError: "0.7", MetricSNRDb: "3"},
			[]string{"minCosine: metric cosine was not measured (an output of one value per sample has no cosine: gate it with maxRelativeError or minSnrDb)"}},
		// Several outputs: each gate holds for every output the metrics
		// name, in name order; the unqualified (first output's) metrics
		// are not checked twice.
		{"every output is gated", &v1alpha1.AcceptanceSpec{MinCosine: "0.99", MaxRelativeError: "0.05"},
			map[string]string{
				MetricCosine: "0.999", MetricRelativeError: "0.2",
				"cosine[stateN]": "0.95", "relativeError[stateN]": "0.02",
				"relativeError[output]": "0.2", "snrDb[output]": "14",
			},
			[]string{
				"minCosine: metric cosine[output] was not measured (an output of one value per sample has no cosine: gate it with maxRelativeError or minSnrDb)",
				"minCosine: cosine[stateN] 0.95 is below 0.99",
				"maxRelativeError: relativeError[output] 0.2 is above 0.05",
			}},
		{"unset gates are not checked", &v1alpha1.AcceptanceSpec{MaxBytes: i64(5)}, map[string]string{MetricBytes: "5", MetricAccuracyDrop: "0.9"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, CheckGates(tc.gates, tc.metrics)); diff != "" {
				t.Errorf("CheckGates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestOutputMetricNames(t *testing.T) {
	type split struct {
		Metric, Output string
		OK             bool
	}
	tests := []struct {
		name string
		want split
	}{
		{OutputMetric(MetricCosine, "stateN"), split{"cosine", "stateN", true}},
		{OutputMetric(MetricSNRDb, "softmax_11.tmp_0"), split{"snrDb", "softmax_11.tmp_0", true}},
		{OutputMetric(MetricRelativeError, "out[0]"), split{"relativeError", "out[0]", true}},
		{MetricCosine, split{}},
		{"[x]", split{}},
		{"cosine[x", split{}},
	}
	for _, tc := range tests {
		m, o, ok := SplitOutputMetric(tc.name)
		if d := cmp.Diff(tc.want, split{m, o, ok}); d != "" {
			t.Errorf("SplitOutputMetric(%q) (-want +got):\n%s", tc.name, d)
		}
	}
	got := MetricOutputNames(map[string]string{"cosine": "1", "cosine[b]": "1", "snrDb[b]": "2", "snrDb[a]": "3", "bytes": "4"})
	if d := cmp.Diff([]string{"a", "b"}, got); d != "" {
		t.Errorf("MetricOutputNames (-want +got):\n%s", d)
	}
}
