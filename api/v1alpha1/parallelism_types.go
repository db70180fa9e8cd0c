package v1alpha1

// MaxShards bounds spec.parallelism.shards. It is also the number of
// units every data pass is cut into, whatever the shard count (see
// pipeline.ShardUnits), which is what makes every allowed shard count
// merge to the same statistics.
const MaxShards = 16

// LayerInputs says what each block of a Hessian stage is calibrated on.
// +kubebuilder:validation:Enum=Compressed;Original
type LayerInputs string

const (
	// LayerInputsCompressed: each block on the outputs of the blocks
	// before it as already compressed (SparseGPT's and GPTQ's sequential
	// propagation; the default).
	LayerInputsCompressed LayerInputs = "Compressed"
	// LayerInputsOriginal: each block on the inputs the original model
	// gives it, so blocks are independent (what spec.parallelism.layers
	// needs).
	LayerInputsOriginal LayerInputs = "Original"
)

// MaxLayerWorkers bounds spec.parallelism.layers.
const MaxLayerWorkers = 64

// ParallelismSpec spreads the data passes of a stage over pods, and the
// blocks of a Hessian stage over workers.
// +kubebuilder:validation:XValidation:rule="!has(self.layers) || self.layers == 1 || (has(self.layerInputs) && self.layerInputs == 'Original')",message="spec.parallelism.layers above 1 needs spec.parallelism.layerInputs: Original: blocks are independent only when each is calibrated on the original model's block inputs"
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

	// Layers deals the blocks of a Hessian stage (prune.method hessian,
	// quantize.algorithm gptq) to this many workers, each processing its
	// contiguous range of blocks from the captured block inputs and
	// returning its compressed tensors; an assemble step writes them into
	// the model in worker order. Needs layerInputs: Original; the model is
	// the same for every count. On a cluster a hessian Prune stage or a
	// GPTQ Quantize stage runs as an Indexed Job of this many pods (its
	// data shards then run inside each pod); index 0 assembles the model.
	// Other stages ignore it. See docs/parallelism.md.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=64
	Layers int32 `json:"layers,omitempty"`
	// LayerInputs is what each block of a Hessian stage is calibrated on:
	// Compressed (the default) feeds it the outputs of the blocks before
	// it as already compressed, which is SparseGPT's and GPTQ's own
	// sequential order and the more accurate; Original feeds it the
	// original model's block inputs, so blocks are independent of each
	// other (what layers above 1 needs), at the cost of calibrating each
	// layer on inputs the compressed model no longer produces. It changes
	// the model, so it is part of the stage's cache key.
	// +optional
	// +kubebuilder:default=Compressed
	LayerInputs LayerInputs `json:"layerInputs,omitempty"`
}
