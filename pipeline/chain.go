package pipeline

import "github.com/kompress/kompress/api/v1alpha1"

// ChainLink is one stage of a job's chain as a release manifest records it:
// what the stage does, the cache key that addresses its work and the model
// it wrote.
type ChainLink struct {
	Stage    StageSpec `json:"stage"`
	CacheKey string    `json:"cacheKey"`
	// ContentKey is the key the stage's artifacts live under when it read
	// files that were not pinned (see Task.Resolve).
	ContentKey string `json:"contentKey,omitempty"`
	// Output is the stage's model; for the task's own stage, its URI only
	// (the runner measures the digest).
	Output Ref `json:"output"`
}

// SetChain records in the task the stages before it, from their statuses
// (cache key and output), and the task itself: the runner writes the chain
// into release.json beside the final model. Only the final stage carries
// it, and it is not part of the cache key.
func (t *Task) SetChain(spec *v1alpha1.CompressionJobSpec, before []v1alpha1.StageStatus) {
	if t.Index != t.Stages-1 || len(before) < t.Index || len(spec.Stages) != t.Stages {
		return
	}
	chain := make([]ChainLink, 0, t.Stages)
	for i, st := range before[:t.Index] {
		link := ChainLink{CacheKey: st.CacheKey, ContentKey: st.ContentKey, Stage: StageSpecOf(spec.Stages[i])}
		if st.Output != nil {
			link.Output = Ref{URI: st.Output.URI, Digest: st.Output.Digest}
		}
		chain = append(chain, link)
	}
	t.Chain = append(chain, ChainLink{Stage: t.Stage, CacheKey: t.CacheKey, Output: Ref{URI: t.OutputURI}})
}
