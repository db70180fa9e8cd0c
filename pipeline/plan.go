package pipeline

import (
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
)

// SourceRef is the job's source model as a Ref.
func SourceRef(spec *v1alpha1.CompressionJobSpec) Ref {
	return Ref{URI: spec.Source.URI, Digest: NormalizeDigest(spec.Source.SHA256)}
}

// StageInput is the input of stage index: the source for the first stage,
// the previous stage's output otherwise. prev is that output (nil for the
// first stage).
func StageInput(spec *v1alpha1.CompressionJobSpec, index int, prev *v1alpha1.Artifact) (Ref, error) {
	if index == 0 {
		return SourceRef(spec), nil
	}
	if prev == nil || prev.URI == "" {
		return Ref{}, fmt.Errorf("stage %d has no input: stage %d has not produced an artifact", index, index-1)
	}
	return Ref{URI: prev.URI, Digest: prev.Digest}, nil
}

// NewTask plans stage index of a job whose input is known.
func NewTask(jobName string, spec *v1alpha1.CompressionJobSpec, index int, input Ref, runnerVersion string) (Task, error) {
	if index < 0 || index >= len(spec.Stages) {
		return Task{}, fmt.Errorf("stage index %d is outside the %d stages of the job", index, len(spec.Stages))
	}
	st := spec.Stages[index]
	t := Task{
		Version:       ContractVersion,
		Job:           jobName,
		Index:         index,
		Stages:        len(spec.Stages),
		Stage:         StageSpecOf(st),
		Input:         input,
		Source:        SourceRef(spec),
		Evaluation:    spec.Evaluation,
		RunnerVersion: runnerVersion,
	}
	if spec.Parallelism != nil {
		t.Shards = max(int(spec.Parallelism.Shards), 1)
		t.Layers = max(int(spec.Parallelism.Layers), 1)
		t.OriginalLayerInputs = spec.Parallelism.LayerInputs == v1alpha1.LayerInputsOriginal
	}
	if spec.Dataset != nil {
		t.Dataset = &DatasetRef{
			Ref:    Ref{URI: spec.Dataset.URI, Digest: NormalizeDigest(spec.Dataset.SHA256)},
			Format: spec.Dataset.Format,
		}
	}
	t.CacheKey = CacheKey(t)
	t.OutputURI = ArtifactURI(spec.Output.URI, t.CacheKey)
	return t, t.Validate()
}
