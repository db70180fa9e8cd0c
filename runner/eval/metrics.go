package eval

import (
	"math"
	"strconv"
	"time"

	"github.com/kompress/kompress/pipeline"
)

// Metrics renders the report as pipeline metrics: decimal strings under
// the pipeline.Metric* names, fractions in [0, 1] to 6 decimals, latencies
// in milliseconds to the microsecond. Metrics that were not measured are
// absent.
func (r Report) Metrics() map[string]string {
	m := map[string]string{
		pipeline.MetricBytes:            strconv.FormatInt(r.Bytes, 10),
		pipeline.MetricParams:           strconv.FormatInt(r.Params, 10),
		pipeline.MetricNonzeroParams:    strconv.FormatInt(r.NonzeroParams, 10),
		pipeline.MetricSparsity:         decimal(r.Sparsity, 6),
		pipeline.MetricMACs:             strconv.FormatInt(r.MACs, 10),
		pipeline.MetricSamples:          strconv.Itoa(r.Samples),
		pipeline.MetricLatencyP50Ms:     millis(r.LatencyP50),
		pipeline.MetricLatencyP95Ms:     millis(r.LatencyP95),
		pipeline.MetricLatencyBatchSize: strconv.Itoa(r.LatencyBatchSize),
	}
	if r.SourceBytes > 0 {
		m[pipeline.MetricSourceBytes] = strconv.FormatInt(r.SourceBytes, 10)
	}
	if r.Labeled {
		m[pipeline.MetricAccuracy] = decimal(r.Accuracy, 6)
	}
	if r.Compared {
		m[pipeline.MetricTop1Agreement] = decimal(r.Top1Agreement, 6)
		m[pipeline.MetricCosine] = decimal(r.Cosine, 6)
	}
	if r.Labeled && r.Compared {
		m[pipeline.MetricSourceAccuracy] = decimal(r.SourceAccuracy, 6)
		m[pipeline.MetricAccuracyDrop] = decimal(r.AccuracyDrop(), 6)
	}
	return m
}

// decimal rounds v to places decimals and prints it without trailing
// zeros ("0.987", "1", "-0.002").
func decimal(v float64, places int) string {
	p := math.Pow10(places)
	v = math.Round(v*p) / p
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func millis(d time.Duration) string {
	return decimal(float64(d)/float64(time.Millisecond), 3)
}
