package runner

import (
	"context"
	"strconv"
	"time"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/eval"
)

// evaluation is what the runner reports about a model it publishes.
type evaluation struct {
	Metrics map[string]string
	Details eval.Report
}

// evaluate loads and runs the model in ONNX Runtime and measures it against
// the source on the job's dataset. An error means ONNX Runtime cannot use
// the model: it must not be published, and retrying will not change that.
func evaluate(ctx context.Context, task pipeline.Task, o *Options, in inputs, model []byte) (evaluation, error) {
	rep, err := eval.Evaluate(ctx, eval.Request{
		Model: model, Name: task.OutputURI,
		Source: in.source, SourceName: task.Source.URI,
		Data: in.data, Spec: task.Evaluation, Threads: o.Threads,
		Progress: func(done, total int) {
			o.Progress(Event{Stage: task.Stage.Name, Index: task.Index, Of: task.Stages, Phase: PhaseEvaluate, Done: int64(done), Total: int64(total), Unit: "samples"})
		},
	})
	if err != nil {
		return evaluation{}, &Error{Code: pipeline.ExitBadInput, Reason: "OutputRejected", Err: err}
	}
	return evaluation{Metrics: metrics(rep), Details: rep}, nil
}

// metrics renders a report with the pipeline's metric names; what was not
// measured (accuracy without labels) is left out rather than zero.
func metrics(r eval.Report) map[string]string {
	m := map[string]string{
		pipeline.MetricBytes:            strconv.FormatInt(r.Bytes, 10),
		pipeline.MetricParams:           strconv.FormatInt(r.Params, 10),
		pipeline.MetricNonzeroParams:    strconv.FormatInt(r.NonzeroParams, 10),
		pipeline.MetricSparsity:         frac(r.Sparsity),
		pipeline.MetricMACs:             strconv.FormatInt(r.MACs, 10),
		pipeline.MetricSamples:          strconv.Itoa(r.Samples),
		pipeline.MetricLatencyP50Ms:     ms(r.LatencyP50),
		pipeline.MetricLatencyP95Ms:     ms(r.LatencyP95),
		pipeline.MetricLatencyBatchSize: strconv.Itoa(r.LatencyBatchSize),
	}
	if r.SourceBytes > 0 {
		m[pipeline.MetricSourceBytes] = strconv.FormatInt(r.SourceBytes, 10)
	}
	if r.Labeled {
		m[pipeline.MetricAccuracy] = frac(r.Accuracy)
		if r.Compared {
			m[pipeline.MetricSourceAccuracy] = frac(r.SourceAccuracy)
			m[pipeline.MetricAccuracyDrop] = frac(r.AccuracyDrop())
		}
	}
	if r.Compared {
		m[pipeline.MetricTop1Agreement] = frac(r.Top1Agreement)
		m[pipeline.MetricCosine] = strconv.FormatFloat(r.Cosine, 'f', 6, 64)
	}
	return m
}

func frac(f float64) string { return strconv.FormatFloat(f, 'f', 4, 64) }

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}
