package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// keyMaterial is everything that changes what a stage produces. A ref is
// keyed by digest when known, else by URI: pin spec.source.sha256 for
// strictly content-addressed keys.
type keyMaterial struct {
	Contract      string   `json:"contract"`
	RunnerVersion string   `json:"runnerVersion"`
	Input         string   `json:"input"`
	Source        string   `json:"source"`
	Dataset       string   `json:"dataset,omitempty"`
	Evaluation    any      `json:"evaluation"`
	Stage         stageKey `json:"stage"`
}

// stageKey is the stage body without its name: renaming a stage does not
// change its work.
type stageKey struct {
	Type     string `json:"type"`
	Prune    any    `json:"prune,omitempty"`
	Distill  any    `json:"distill,omitempty"`
	Quantize any    `json:"quantize,omitempty"`
	Custom   any    `json:"custom,omitempty"`
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
		Stage: stageKey{
			Type: string(t.Stage.Type),
		},
	}
	// Typed nil pointers would encode as null; only set what is present.
	if t.Stage.Prune != nil {
		m.Stage.Prune = t.Stage.Prune
	}
	if t.Stage.Distill != nil {
		m.Stage.Distill = t.Stage.Distill
	}
	if t.Stage.Quantize != nil {
		m.Stage.Quantize = t.Stage.Quantize
	}
	if t.Stage.Custom != nil {
		m.Stage.Custom = t.Stage.Custom
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

func refKey(r Ref) string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.URI
}
