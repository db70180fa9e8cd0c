package runner

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// evaluation is what the runner reports about a model it publishes.
type evaluation struct {
	Metrics map[string]string
	Details eval.Report
}

// evaluate loads and runs the model in ONNX Runtime and measures it against
// the source on the job's dataset. An error means ONNX Runtime cannot use
// the model: it must not be published, and retrying will not change that.
func evaluate(ctx context.Context, task pipeline.Task, o *Options, in inputs, model output) (evaluation, error) {
	settings, err := evalSettings(task.Evaluation)
	if err != nil {
		return evaluation{}, BadInput(err)
	}
	specs, err := inputSpecs(task.Evaluation.Inputs)
	if err != nil {
		return evaluation{}, BadInput(err)
	}
	rep, err := eval.Evaluate(ctx, eval.Request{
		Model: model.bytes, Files: model.files, FilesBytes: model.size, Name: task.OutputURI,
		Source: in.source, SourceFiles: in.sourceFiles, SourceFilesBytes: in.sourceBytes, SourceName: task.Source.URI,
		Data: in.data, Spec: settings, Inputs: specs, Threads: o.Threads,
		Exchange: in.shards, ScoreOnly: !publishes(task, o),
		Progress: func(done, total int) {
			o.Progress(Event{Stage: task.Stage.Name, Index: task.Index, Of: task.Stages, Phase: PhaseEvaluate, Done: int64(done), Total: int64(total), Unit: "samples"})
		},
	})
	if _, ok := errors.AsType[*exchange.Error](err); ok {
		// The shards' exchange failed, not the model.
		return evaluation{}, err
	}
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

// output is a model the stage wrote: its bytes, or, written with
// external data, the model read back from its files (size: every file's
// bytes).
type output struct {
	bytes []byte
	files *onnx.Model
	size  int64
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

// inputSpecs translates spec.evaluation.inputs into feed's specs by input
// name: an empty shape is the declared one, value and range decimal
// strings become numbers. Names are checked against the model where the
// specs are used (feed.Synthesize), which names the unknown input.
func inputSpecs(ins []v1alpha1.EvaluationInput) (map[string]feed.Spec, error) {
	if len(ins) == 0 {
		return nil, nil
	}
	specs := make(map[string]feed.Spec, len(ins))
	for _, in := range ins {
		field := fmt.Sprintf("%s[%q]", eval.InputsField, in.Name)
		if _, dup := specs[in.Name]; dup {
			return nil, fmt.Errorf("%s is given twice", field)
		}
		var s feed.Spec
		if len(in.Shape) > 0 {
			s.Shape = slices.Clone(in.Shape)
		}
		for _, d := range in.Shape {
			if d <= 0 {
				return nil, fmt.Errorf("%s.shape is %v: dims must be positive", field, in.Shape)
			}
		}
		if in.Value != "" && in.Range != nil {
			return nil, fmt.Errorf("%s sets value and range: set one of them", field)
		}
		if in.Value != "" {
			v, err := decimal(field+".value", in.Value)
			if err != nil {
				return nil, err
			}
			s.Value = &v
		}
		if in.Range != nil {
			if len(in.Range) != 2 {
				return nil, fmt.Errorf("%s.range has %d values: it is [low, high)", field, len(in.Range))
			}
			var rg [2]float64
			for i, v := range in.Range {
				var err error
				if rg[i], err = decimal(field+".range", v); err != nil {
					return nil, err
				}
			}
			if !(rg[0] < rg[1]) {
				return nil, fmt.Errorf("%s.range is [%s, %s): it needs low < high", field, in.Range[0], in.Range[1])
			}
			s.Range = &rg
		}
		specs[in.Name] = s
	}
	return specs, nil
}

// decimal parses a decimal string of the spec.
func decimal(field, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s is %q, not a decimal number", field, v)
	}
	return f, nil
}
