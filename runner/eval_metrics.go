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
	if r.Compared && len(r.Outputs) > 0 {
		outputMetrics(m, r.Outputs[0], "")
		if len(r.Outputs) > 1 {
			m[pipeline.MetricOutputs] = strconv.Itoa(len(r.Outputs))
			perOutputMetrics(m, r.Outputs)
		}
	}
	if r.Labeled && r.Compared {
		m[pipeline.MetricSourceAccuracy] = metricDecimal(r.SourceAccuracy, 6)
		m[pipeline.MetricAccuracyDrop] = metricDecimal(r.AccuracyDrop(), 6)
	}
	return m
}

// outputMetricsBytes bounds the metrics of single outputs that a model
// with several adds (names and values): the result must fit a 4 KiB
// termination message. Outputs past it are compared in result.json only.
const outputMetricsBytes = 1024

// outputMetrics adds one output's fidelity under the metric names, each
// qualified by output (pipeline.OutputMetric) unless output is "". Top-1
// agreement and cosine are absent for an output of one value per sample.
func outputMetrics(m map[string]string, f eval.OutputFidelity, output string) {
	name := func(metric string) string {
		if output == "" {
			return metric
		}
		return pipeline.OutputMetric(metric, output)
	}
	if f.Kind != eval.OutputValue {
		m[name(pipeline.MetricTop1Agreement)] = metricDecimal(f.Top1Agreement, 6)
		m[name(pipeline.MetricCosine)] = metricDecimal(f.Cosine, 6)
	}
	m[name(pipeline.MetricRelativeError)] = metricSignificant(f.RelativeError, 6)
	m[name(pipeline.MetricMaxAbsError)] = metricSignificant(f.MaxAbsError, 6)
	m[name(pipeline.MetricSNRDb)] = metricDecimal(f.SNRDb, 3)
}

// perOutputMetrics adds every output's fidelity, qualified by its name,
// in the model's order while they fit outputMetricsBytes.
func perOutputMetrics(m map[string]string, outs []eval.OutputFidelity) {
	used := 0
	for _, f := range outs {
		one := map[string]string{}
		outputMetrics(one, f, f.Name)
		size := 0
		for k, v := range one {
			size += len(k) + len(v) + 6 // quotes, colon, comma
		}
		if used+size > outputMetricsBytes {
			return
		}
		used += size
		for k, v := range one {
			m[k] = v
		}
	}
}

// metricSignificant rounds v to digits significant digits and prints it
// as a plain decimal ("0.000123457", "1234.57"): errors span many orders
// of magnitude.
func metricSignificant(v float64, digits int) string {
	if v == 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return metricDecimal(v, 0)
	}
	exp := int(math.Floor(math.Log10(math.Abs(v))))
	if exp < -30 {
		return "0"
	}
	places := max(digits-1-exp, 0)
	return metricDecimal(v, places)
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
