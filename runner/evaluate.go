package runner

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
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
	settings, err := evalSettings(task.Evaluation)
	if err != nil {
		return evaluation{}, BadInput(err)
	}
	rep, err := eval.Evaluate(ctx, eval.Request{
		Model: model, Name: task.OutputURI,
		Source: in.source, SourceName: task.Source.URI,
		Data: in.data, Spec: settings, Threads: o.Threads,
		Progress: func(done, total int) {
			o.Progress(Event{Stage: task.Stage.Name, Index: task.Index, Of: task.Stages, Phase: PhaseEvaluate, Done: int64(done), Total: int64(total), Unit: "samples"})
		},
	})
	if err != nil {
		if ctx.Err() != nil {
			// Interrupted (SIGTERM, a deadline): that says nothing
			// about the model, and a retry may finish.
			return evaluation{}, fmt.Errorf("evaluation of %s interrupted: %w", task.OutputURI, err)
		}
		return evaluation{}, &Error{Code: pipeline.ExitBadInput, Reason: "OutputRejected", Err: err}
	}
	return evaluation{Metrics: evalMetrics(rep), Details: rep}, nil
}

// evalSettings translates spec.evaluation into eval's settings, naming
// the field at fault. Fields left at zero (a task that did not come
// through the API server) take the CRD's defaults, which are eval's.
func evalSettings(spec v1alpha1.EvaluationSpec) (eval.Settings, error) {
	switch {
	case spec.Samples < 0:
		return eval.Settings{}, fmt.Errorf("evaluation.samples is %d, expected >= 0", spec.Samples)
	case spec.LatencyBatchSize < 0:
		return eval.Settings{}, fmt.Errorf("evaluation.latencyBatchSize is %d, expected >= 1 (or 0 for the default %d)", spec.LatencyBatchSize, eval.DefaultLatencyBatchSize)
	case spec.LatencyRuns < 0:
		return eval.Settings{}, fmt.Errorf("evaluation.latencyRuns is %d, expected >= 1 (or 0 for the default %d)", spec.LatencyRuns, eval.DefaultLatencyRuns)
	}
	s := eval.Settings{Samples: int(spec.Samples), LatencyBatchSize: int(spec.LatencyBatchSize), LatencyRuns: int(spec.LatencyRuns)}
	if s.LatencyBatchSize == 0 {
		s.LatencyBatchSize = eval.DefaultLatencyBatchSize
	}
	if s.LatencyRuns == 0 {
		s.LatencyRuns = eval.DefaultLatencyRuns
	}
	return s, nil
}
