package pipeline

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
)
