package runner

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
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
	// Data is the job's dataset fitted to the model's input, or nil.
	Data *dataset.Dataset
	// Storage reads anything else the stage names (a teacher, a training set).
	Storage *storage.Client
	Log     *slog.Logger
	// Progress reports the transform's own progress.
	Progress func(done, total int64, unit string)
}

// StageOutput is a transformed model and what the stage wants recorded
// about it in result.json (per-layer sparsity, tensors left in float, ...).
type StageOutput struct {
	Model   *onnx.Model
	Details any
}

// StageFunc is a built-in stage.
type StageFunc func(ctx context.Context, in *StageInput) (*StageOutput, error)

// builtin returns the implementation of a built-in stage type.
func builtin(t v1alpha1.StageType) (StageFunc, error) {
	switch t {
	case v1alpha1.StageTypeQuantize:
		return quantizeStage, nil
	case v1alpha1.StageTypePrune:
		return pruneStage, nil
	case v1alpha1.StageTypeDistill:
		return distillStage, nil
	}
	return nil, BadTask(fmt.Errorf("stage type %s is not built into runner %s", t, pipeline.Version))
}
