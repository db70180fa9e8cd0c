package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/kompress/kompress/api/v1alpha1"
)

// keyMaterial is everything that changes what a stage produces. A ref is
// keyed by digest when known, else by URI: pin spec.source.sha256 for
// strictly content-addressed keys.
type keyMaterial struct {
	Contract      string `json:"contract"`
	RunnerVersion string `json:"runnerVersion"`
	Input         string `json:"input"`
	Source        string `json:"source"`
	Dataset       string `json:"dataset,omitempty"`
	Evaluation    any    `json:"evaluation"`
	// Stage is the stage body without its name: renaming a stage does
	// not change its work.
	Stage v1alpha1.StageBody `json:"stage"`
	// Sharded is set with spec.parallelism: histogram calibration then
	// bins over fixed ranges, which merge exactly (the shard count itself
	// does not change the result).
	Sharded bool `json:"sharded,omitempty"`
	// OriginalLayerInputs: Hessian stages calibrate every block on the
	// original model's block inputs (the worker count, layers, does not
	// change the result).
	OriginalLayerInputs bool `json:"originalLayerInputs,omitempty"`
}

// CacheKey is sha256 over the input, the stage body, the dataset, the
// evaluation settings and the runner version.
func CacheKey(t Task) string {
	m := keyMaterial{
		Contract:      ContractVersion,
		RunnerVersion: t.RunnerVersion,
		Input:         refKey(t.Input),
		Source:        refKey(t.Source),
		Evaluation:    t.Evaluation,
		Stage:         stageKey(t.Stage.StageBody),
		Sharded:       t.Shards > 0,

		OriginalLayerInputs: t.OriginalLayerInputs,
	}
	if t.Dataset != nil {
		m.Dataset = refKey(t.Dataset.Ref)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic("pipeline: cache key material does not encode: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// stageKey is the stage body as it changes the work: smoothQuant with
// alpha off is no smoothQuant, so a variant that turns it off shares the
// cache of a job without it.
func stageKey(b v1alpha1.StageBody) v1alpha1.StageBody {
	if q := b.Quantize; q != nil && q.SmoothQuant != nil && q.SmoothQuant.Alpha == v1alpha1.SmoothQuantOff {
		q = q.DeepCopy()
		q.SmoothQuant = nil
		b.Quantize = q
	}
	return b
}

func refKey(r Ref) string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.URI
}
