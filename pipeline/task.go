package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/shard"
)

// ContractVersion is the version of the task/result JSON. A runner refuses a
// task of another version with ExitUsage.
const ContractVersion = "kompress.dev/v1"

// TaskEnv is the environment variable that carries the task JSON into a pod.
const TaskEnv = "KOMPRESS_TASK"

// Ref points at a blob, with its digest when known.
type Ref struct {
	URI string `json:"uri"`
	// Digest is sha256:<hex>; empty when the content is not pinned.
	Digest string `json:"digest,omitempty"`
}

// DatasetRef is a dataset blob.
type DatasetRef struct {
	Ref    `json:",inline"`
	Format v1alpha1.DatasetFormat `json:"format,omitempty"`
}

// StageSpec is what a stage does: a v1alpha1.Stage without pod placement,
// which does not change the work and so stays out of the cache key.
type StageSpec struct {
	Name               string `json:"name"`
	v1alpha1.StageBody `json:",inline"`
}

// StageSpecOf is the work of stage s.
func StageSpecOf(s v1alpha1.Stage) StageSpec {
	return StageSpec{Name: s.Name, StageBody: s.StageBody}
}

// Task is everything a runner needs to execute one stage.
type Task struct {
	Version string `json:"version"`
	// Job is the CompressionJob, namespace/name (or the file name locally).
	Job string `json:"job"`
	// Index of the stage in the chain, from 0; Stages is the chain length.
	Index  int `json:"index"`
	Stages int `json:"stages"`

	Stage StageSpec `json:"stage"`
	// Input is the model to transform: the source or the previous output.
	Input Ref `json:"input"`
	// Source is the job's source model: the fidelity reference and the
	// default distillation teacher.
	Source Ref `json:"source"`
	// Dataset feeds calibration and evaluation.
	Dataset *DatasetRef `json:"dataset,omitempty"`

	Evaluation v1alpha1.EvaluationSpec `json:"evaluation"`

	// Shards is spec.parallelism.shards, 0 without spec.parallelism: how
	// many workers share the stage's data passes, with statistics that
	// merge exactly (package shard). The count does not change the
	// result, so only whether it is set is in the cache key.
	Shards int `json:"shards,omitempty"`
	// Indexed says the stage runs as the pods of an Indexed Job of
	// IndexedPods completions, this runner being the index its pod's
	// JOB_COMPLETION_INDEX says: the indices exchange partial statistics
	// (data shards) or partial models (layer workers, LayerIndexed)
	// through object storage and index 0 publishes. Without it the
	// runner runs every shard and layer worker itself.
	Indexed bool `json:"indexed,omitempty"`
	// Layers is spec.parallelism.layers (0 without it): how many workers
	// share a Hessian stage's blocks. The count does not change the
	// result, so it is not in the cache key.
	Layers int `json:"layers,omitempty"`
	// OriginalLayerInputs is spec.parallelism.layerInputs: Original: a
	// Hessian stage calibrates every block on the original model's block
	// inputs. It changes the result: it is in the cache key.
	OriginalLayerInputs bool `json:"originalLayerInputs,omitempty"`

	// CacheKey addresses this work; OutputURI is <output>/<key>/model.onnx.
	CacheKey  string `json:"cacheKey"`
	OutputURI string `json:"outputURI"`

	RunnerVersion string `json:"runnerVersion"`

	// Chain is set on the final stage only: every stage of the job with
	// its cache key and output (see SetChain), for release.json.
	Chain []ChainLink `json:"chain,omitempty"`

	// Select, when set, makes this the select step of a sweep (see
	// SelectTask) rather than a stage: Stage is {name: select}, and there
	// is no input model.
	Select *SelectTask `json:"select,omitempty"`
}

// ResultURI is where the runner writes result.json for this task.
func (t Task) ResultURI() string {
	return SiblingURI(t.OutputURI, ResultFile)
}

// Encode renders the task as compact JSON.
func (t Task) Encode() (string, error) {
	b, err := json.Marshal(t)
	return string(b), err
}

// DecodeTask parses and validates a task.
func DecodeTask(data []byte) (Task, error) {
	var t Task
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Task{}, fmt.Errorf("task: not valid JSON of the %s contract: %w", ContractVersion, err)
	}
	return t, t.Validate()
}

// Validate checks the fields a runner relies on.
func (t Task) Validate() error {
	if t.Select != nil {
		return t.validateSelect()
	}
	var errs []error
	if t.Version != ContractVersion {
		errs = append(errs, fmt.Errorf("task.version is %q, this runner speaks %q", t.Version, ContractVersion))
	}
	if t.Stage.Name == "" {
		errs = append(errs, errors.New("task.stage.name is empty"))
	}
	if err := t.Stage.CheckBody("task.stage"); err != nil {
		errs = append(errs, err)
	}
	if t.Input.URI == "" {
		errs = append(errs, errors.New("task.input.uri is empty"))
	}
	if t.Source.URI == "" {
		errs = append(errs, errors.New("task.source.uri is empty"))
	}
	if t.OutputURI == "" {
		errs = append(errs, errors.New("task.outputURI is empty"))
	}
	if !isHexKey(t.CacheKey) {
		errs = append(errs, fmt.Errorf("task.cacheKey %q is not 64 lowercase hex digits", t.CacheKey))
	}
	if t.Shards != 0 && !shard.Valid(t.Shards) {
		errs = append(errs, fmt.Errorf("task.shards %d is not a power of two from 1 to %d", t.Shards, shard.Units))
	}
	if t.Indexed && t.IndexedPods() < 2 {
		errs = append(errs, fmt.Errorf("task.indexed is set for a stage that runs as one pod (task.shards %d, type %s): only Prune and Quantize stages with shards above 1, and hessian Prune and GPTQ Quantize stages with layers above 1, run as an Indexed Job", t.Shards, t.Stage.Type))
	}
	if t.Layers < 0 || t.Layers > v1alpha1.MaxLayerWorkers {
		errs = append(errs, fmt.Errorf("task.layers %d is outside [1, %d]", t.Layers, v1alpha1.MaxLayerWorkers))
	}
	if t.Layers > 1 && !t.OriginalLayerInputs {
		errs = append(errs, fmt.Errorf("task.layers %d needs task.originalLayerInputs: blocks are independent only then", t.Layers))
	}
	if t.Index < 0 || t.Index >= t.Stages {
		errs = append(errs, fmt.Errorf("task.index %d is outside [0, %d)", t.Index, t.Stages))
	}
	return errors.Join(errs...)
}

// IndexedPods is how many pods run the stage on a cluster: Layers for a
// stage whose blocks are dealt to workers (LayerIndexed), else Shards for
// a Prune or Quantize stage with Shards above 1 (the pods of an Indexed
// Job, one index per shard), else 1. Distillation stays in one pod (its
// steps are sequential in the weights: sharding it is data-parallel
// training, a training operator's job), and so does a Custom stage.
func (t Task) IndexedPods() int {
	if t.layerStage() && t.Layers > 1 {
		return t.Layers
	}
	if t.Shards > 1 && (t.Stage.Type == v1alpha1.StageTypePrune || t.Stage.Type == v1alpha1.StageTypeQuantize) {
		return t.Shards
	}
	return 1
}

// LayerIndexed says the pods of the stage's Indexed Job are layer
// workers, not data shards: index k processes the k-th range of the
// stage's blocks (and runs the data shards, if any, as workers of its
// own process), and index 0 assembles the model from every index's
// partial. It takes the Hessian stages with Layers above 1: hessian
// pruning and GPTQ (see docs/parallelism.md).
func (t Task) LayerIndexed() bool { return t.Indexed && t.layerStage() && t.Layers > 1 }

// layerStage reports a stage whose blocks run as layer pods: a hessian
// Prune stage or a GPTQ Quantize stage.
func (t Task) layerStage() bool {
	switch s := t.Stage; s.Type {
	case v1alpha1.StageTypePrune:
		return s.Prune != nil && s.Prune.Method == v1alpha1.PruneHessian
	case v1alpha1.StageTypeQuantize:
		return s.Quantize != nil && s.Quantize.Algorithm == v1alpha1.AlgorithmGPTQ
	}
	return false
}

func isHexKey(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
