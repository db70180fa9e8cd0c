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
