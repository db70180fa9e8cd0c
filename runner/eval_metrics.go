package runner

import (
	"math"
	"strconv"
	"time"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/eval"
)

// evalMetrics renders eval's report as the pipeline's metrics: decimal
// strings under the pipeline.Metric* names, fractions in [0, 1] to 6
// decimals, latencies in milliseconds to the microsecond. Metrics that
// were not measured are absent.
func evalMetrics(r eval.Report) map[string]string {
	m := map[string]string{
		pipeline.MetricBytes:            strconv.FormatInt(r.Bytes, 10),
		pipeline.MetricParams:           strconv.FormatInt(r.Params, 10),
		pipeline.MetricNonzeroParams:    strconv.FormatInt(r.NonzeroParams, 10),
		pipeline.MetricSparsity:         metricDecimal(r.Sparsity, 6),
		pipeline.MetricMACs:             strconv.FormatInt(r.MACs, 10),
		pipeline.MetricSamples:          strconv.Itoa(r.Samples),
		pipeline.MetricLatencyP50Ms:     metricMillis(r.LatencyP50),
		pipeline.MetricLatencyP95Ms:     metricMillis(r.LatencyP95),
		pipeline.MetricLatencyBatchSize: strconv.Itoa(r.LatencyBatchSize),
	}
	if r.SourceBytes > 0 {
		m[pipeline.MetricSourceBytes] = strconv.FormatInt(r.SourceBytes, 10)
	}
	if r.Labeled {
		m[pipeline.MetricAccuracy] = metricDecimal(r.Accuracy, 6)
	}
	if r.Compared {
		m[pipeline.MetricTop1Agreement] = metricDecimal(r.Top1Agreement, 6)
		m[pipeline.MetricCosine] = metricDecimal(r.Cosine, 6)
	}
	if r.Labeled && r.Compared {
		m[pipeline.MetricSourceAccuracy] = metricDecimal(r.SourceAccuracy, 6)
		m[pipeline.MetricAccuracyDrop] = metricDecimal(r.AccuracyDrop(), 6)
	}
	return m
}

// metricDecimal rounds v to places decimals and prints it without trailing
// zeros ("0.987", "1", "-0.002").
func metricDecimal(v float64, places int) string {
	p := math.Pow10(places)
	v = math.Round(v*p) / p
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func metricMillis(d time.Duration) string {
	return metricDecimal(float64(d)/float64(time.Millisecond), 3)
}
