package v1alpha1

// MaxShards bounds spec.parallelism.shards. It is also the number of
// units every data pass is cut into, whatever the shard count (see
// pipeline.ShardUnits), which is what makes every allowed shard count
// merge to the same statistics.
const MaxShards = 16

// ParallelismSpec spreads the data passes of a stage over pods.
type ParallelismSpec struct {
	// Shards cuts the dataset into this many contiguous shards. The data
	// passes of a stage (calibration statistics, Hessian accumulation,
	// evaluation) run as an Indexed Job of this many pods, pod i on
	// shard i, each writing its partial statistics; a reduce step merges
	// them in index order. Statistics are summed per fixed unit of the
	// dataset (1/16 of it) and units are combined in a fixed binary tree
	// whose aligned subtrees are the shards, so the model is
	// bit-identical to the one shards: 1 makes (the same digest): hence
	// a power of two. A data pass with fewer samples than shards is
	// refused by the runner. Distillation runs in one pod whatever this
	// says.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:XValidation:rule="self in [1, 2, 4, 8, 16]",message="spec.parallelism.shards must be a power of two from 1 to 16 (1, 2, 4, 8 or 16)"
	Shards int32 `json:"shards,omitempty"`
}
