package runner

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/distill"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

func init() {
	register(v1alpha1.StageTypeDistill, Stage{Describe: describeDistill, Transform: distillStage})
}

func describeDistill(s pipeline.StageSpec) string {
	d := s.Distill
	return fmt.Sprintf("epochs=%d batch=%d optimizer=%s", d.Epochs, d.BatchSize, d.Optimizer)
}

// distillStage trains the student (the previous stage's output, or
// distill.student.uri) to match the teacher (the job's source, or
// distill.teacher.uri) on distill.dataset, else the job's dataset.
func distillStage(ctx context.Context, in *StageInput) (*StageOutput, error) {
	spec := *in.Task.Stage.Distill
	opts, err := distillOptions(spec)
	if err != nil {
		return nil, err
	}
	student, err := distillStudent(ctx, in)
	if err != nil {
		return nil, err
	}
	teacher, teacherName := in.Source, in.Task.Source.URI
	if spec.Teacher != nil && spec.Teacher.URI != "" {
		teacherName = spec.Teacher.URI
		if teacher, _, err = readModel(ctx, in.Storage, pipeline.Ref{URI: teacherName}); errors.Is(err, onnx.ErrExternalData) {
			teacher = nil // refused below, in the same words as an external source
		} else if err != nil {
			return nil, err
		}
	}
	if teacher == nil {
		return nil, BadInputf("the teacher %s keeps its weights in external data files: distillation takes a teacher in one file (give distill.teacher.uri)", teacherName)
	}
	train, err := distillData(ctx, in, student)
	if err != nil {
		return nil, err
	}
	opts.Threads, opts.TeacherName, opts.Log = runtime.GOMAXPROCS(0), teacherName, in.Log
	opts.Progress = func(p distill.Progress) { in.Progress(p.Step, p.Steps, "steps") }
	out, report, err := distill.Distill(ctx, student, teacher, train, opts)
	if err != nil {
		return nil, err
	}
	return &StageOutput{Model: out, Details: report}, nil
}

// distillStudent is the model to train: the stage's input unless the spec
// names another architecture.
func distillStudent(ctx context.Context, in *StageInput) (*onnx.Model, error) {
	s := in.Task.Stage.Distill.Student
	if s == nil || s.URI == "" {
		return in.Model, nil
	}
	raw, _, err := in.Storage.ReadAll(ctx, s.URI, "")
	if err != nil {
		return nil, err
	}
	return loadModel(raw, s.URI)
}

// distillData is the training set fitted to the student's input:
// distill.dataset when given (a training split keeps the evaluation set
// honest), else the job's dataset.
func distillData(ctx context.Context, in *StageInput, student *onnx.Model) (*dataset.Dataset, error) {
	ref := in.Task.Stage.Distill.Dataset
	var ds *dataset.Dataset
	switch {
	case ref != nil && ref.URI != "":
		var err error
		if ds, _, err = readDataset(ctx, in.Storage, ref.URI, ref.SHA256, in.DatasetLimits); err != nil {
			return nil, err
		}
	case in.Data != nil:
		ds = in.Data
	default:
		return nil, BadInputf("distill trains on distill.dataset or spec.dataset, and the job has neither")
	}
	ins := feed.Inputs(student)
	if len(ins) != 1 {
		return nil, BadInputf("distillation trains students with exactly one input (fed the dataset's x, or the array named by the input, as float32 batches); the student %s has %d inputs %q: compress it with Prune and Quantize stages instead", student.Name, len(ins), feed.Names(ins))
	}
	fitted, err := feed.Fit(ins, ds)
	if err != nil {
		return nil, BadInput(fmt.Errorf("distillation data: %w", err))
	}
	return fitted, nil
}
