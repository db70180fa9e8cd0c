package runner

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/storage"
)

// StageInput is what a built-in stage transforms.
type StageInput struct {
	Task pipeline.Task
	// Model is the input model, already loaded; the stage may edit it.
	Model *onnx.Model
	// Source is the job's source model (the default distillation teacher).
	Source []byte
	// Data is the job's dataset fitted to the model's inputs (feed.Fit),
	// or nil.
	Data *dataset.Dataset
	// Exchange is where the shards of the stage's data passes meet (nil
	// without spec.parallelism).
	Exchange exchange.Exchange
	// LayerPod is this runner's index of an Indexed Job of layer workers
	// (task.LayerIndexed), where the indices hand their partial models
	// to index 0; nil otherwise.
	LayerPod *exchange.Storage
	// Storage reads anything else the stage names (a teacher, a training set).
	Storage *storage.Client
	// DatasetLimits bound every dataset the stage reads (Options).
	DatasetLimits dataset.Limits
	Log           *slog.Logger
	// Progress reports the transform's own progress.
	Progress func(done, total int64, unit string)
}

// StageOutput is a transformed model and what the stage wants recorded
// about it in result.json (per-layer sparsity, tensors left in float, ...).
type StageOutput struct {
	Model   *onnx.Model
	Details any
	// Warnings say where the model falls short of what the stage asked
	// (weights left out of the requested sparsity or bit-width, and why):
	// they are logged, returned in the result and put in the stage's
	// status message.
	Warnings []string
}

// Stage is one stage type of the runner. Each lives in its own file and
// registers itself there: a new stage type is its API body and that file.
type Stage struct {
	// Describe is a one-line summary of the stage's settings, for progress.
	Describe func(pipeline.StageSpec) string
	// Transform edits the input model, which Execute has read (with the
	// source and the dataset) and will measure and publish.
	Transform func(ctx context.Context, in *StageInput) (*StageOutput, error)
	// Execute, when set instead of Transform, runs the whole task itself
	// and publishes its own result (a Custom stage's command does).
	Execute func(ctx context.Context, task pipeline.Task, o *Options) (pipeline.Result, error)
}

// stages holds every stage type the runner executes.
var stages = map[v1alpha1.StageType]Stage{}

// register adds a stage type; called from the init of the stage's file.
func register(t v1alpha1.StageType, s Stage) {
	if _, dup := stages[t]; dup || (s.Transform == nil) == (s.Execute == nil) || s.Describe == nil {
		panic(fmt.Sprintf("runner: stage type %s registered twice or without exactly one of Transform and Execute", t))
	}
	stages[t] = s
}

// stageOf returns the implementation of a stage type.
func stageOf(t v1alpha1.StageType) (Stage, error) {
	s, ok := stages[t]
	if !ok {
		return Stage{}, BadTask(fmt.Errorf("stage type %s is not built into runner %s", t, pipeline.Version))
	}
	return s, nil
}
