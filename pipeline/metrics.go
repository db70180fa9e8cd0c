package pipeline

import (
	"slices"
	"strings"
)

// Metric names in Result.Metrics and status.output.metrics. Values are
// decimal strings; fractions are in [0, 1], never percentages.
const (
	MetricBytes            = "bytes"
	MetricParams           = "params"
	MetricNonzeroParams    = "nonzeroParams"
	MetricSparsity         = "sparsity"
	MetricMACs             = "macs"
	MetricAccuracy         = "accuracy"
	MetricSourceAccuracy   = "sourceAccuracy"
	MetricAccuracyDrop     = "accuracyDrop"
	MetricTop1Agreement    = "top1Agreement"
	MetricCosine           = "cosine"
	MetricLatencyP50Ms     = "latencyP50Ms"
	MetricLatencyP95Ms     = "latencyP95Ms"
	MetricLatencyBatchSize = "latencyBatchSize"
	MetricSamples          = "samples"
	MetricSourceBytes      = "sourceBytes"
	// MetricRelativeError is ‖y−ŷ‖/‖y‖ against the source's output y
	// (a fraction; 0 is identical).
	MetricRelativeError = "relativeError"
	// MetricMaxAbsError is the largest |y−ŷ| of any value.
	MetricMaxAbsError = "maxAbsError"
	// MetricSNRDb is 10·log10(Σy²/Σ(y−ŷ)²), in decibels.
	MetricSNRDb = "snrDb"
	// MetricOutputs is how many outputs the model has.
	MetricOutputs = "outputs"
)

// OutputMetrics are the metrics measured for each output of a model with
// several: OutputMetric names them per output. Without an output name
// they are the first output's.
var OutputMetrics = []string{MetricTop1Agreement, MetricCosine, MetricRelativeError, MetricMaxAbsError, MetricSNRDb}

// OutputMetric names a metric of one output of a model with several
// outputs: "relativeError[stateN]".
func OutputMetric(metric, output string) string { return metric + "[" + output + "]" }

// SplitOutputMetric is OutputMetric's inverse: ok is false for a name
// that is not about one output.
func SplitOutputMetric(name string) (metric, output string, ok bool) {
	metric, rest, found := strings.Cut(name, "[")
	if !found || !strings.HasSuffix(rest, "]") || metric == "" {
		return "", "", false
	}
	return metric, strings.TrimSuffix(rest, "]"), true
}

// MetricOutputNames lists the outputs that metrics are given for (by
// OutputMetric), sorted; none for a model with one output.
func MetricOutputNames(metrics map[string]string) []string {
	seen := map[string]bool{}
	var names []string
	for k := range metrics {
		if _, out, ok := SplitOutputMetric(k); ok && !seen[out] {
			seen[out] = true
			names = append(names, out)
		}
	}
	slices.Sort(names)
	return names
}
