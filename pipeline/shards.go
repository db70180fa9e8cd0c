package pipeline

import "fmt"

// CheckShards refuses a shard count the API server accepts but the data
// cannot have: a shard with no sample. The runner and `kompress run` both
// say this, in these words (the CRD's rule, which both apply too, refuses
// counts that are not a power of two up to 16). See package shard for how
// shards are cut and merged.
func CheckShards(shards, samples int) error {
	if samples < shards {
		return fmt.Errorf("spec.parallelism.shards: Invalid value: %d: more shards than the data pass has samples (%d): every shard needs at least one", shards, samples)
	}
	return nil
}
