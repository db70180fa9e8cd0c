package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// A stage whose data passes are sharded runs as an Indexed Job of one pod
// per shard, all at once, each index retried on its own; a distillation
// stage, or one shard, stays one pod. A Hessian stage (hessian pruning,
// GPTQ) with layers above 1 is an Indexed Job of one pod per layer
// worker, whatever shards says.
func TestBuildJobIndexed(t *testing.T) {
	prune := v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.5"}}}
	quant := v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic}}}
	kd := v1alpha1.Stage{Name: "kd", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{Epochs: 1}}}
	indexed := jobShape{
		Mode: ptr.To(batchv1.IndexedCompletion), Completions: ptr.To[int32](4), Parallelism: ptr.To[int32](4),
		PerIndex: ptr.To[int32](2), MaxFailed: ptr.To[int32](0), Indexed: true,
	}
	onePod := jobShape{BackoffLimit: ptr.To[int32](2)}
	// Layer workers: the indices are the layers, whatever shards says.
	twoLayers := indexed
	twoLayers.Completions, twoLayers.Parallelism = ptr.To[int32](2), ptr.To[int32](2)
	magnitude := v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}
	gptq := v1alpha1.Stage{Name: "int4", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Algorithm: v1alpha1.AlgorithmGPTQ}}}
	rtn := v1alpha1.Stage{Name: "int4", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Algorithm: v1alpha1.AlgorithmRTN}}}
	tests := []struct {
		name           string
		shards, layers int32
		stage          v1alpha1.Stage
		want           jobShape
	}{
		{"prune, 4 shards", 4, 1, prune, indexed},
		{"quantize, 4 shards", 4, 1, quant, indexed},
		{"distill, 4 shards", 4, 1, kd, onePod},
		{"prune, 1 shard", 1, 1, prune, onePod},
		{"hessian prune, 2 layers", 1, 2, prune, twoLayers},
		{"hessian prune, 2 layers, 4 shards", 4, 2, prune, twoLayers},
		{"magnitude prune, 2 layers", 1, 2, magnitude, onePod},
		{"magnitude prune, 2 layers, 4 shards", 4, 2, magnitude, indexed},
		{"static quantize, 2 layers, 4 shards", 4, 2, quant, indexed},
		{"gptq, 2 layers", 1, 2, gptq, twoLayers},
		{"gptq, 2 layers, 4 shards", 4, 2, gptq, twoLayers},
		{"rtn int4, 2 layers, 4 shards", 4, 2, rtn, indexed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpj := unitCPJ(tt.stage)
			cpj.Spec.Dataset = &v1alpha1.DatasetSpec{URI: "s3://m/data.npz"}
			cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: tt.shards, Layers: tt.layers}
			if tt.layers > 1 {
				cpj.Spec.Parallelism.LayerInputs = v1alpha1.LayerInputsOriginal
			}
			job, err := BuildJob(StageJob{Owner: cpj, Task: unitTask(t, cpj, 0)}, unitDefaults)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, shapeOf(t, job)); diff != "" {
				t.Errorf("Job spec (-want +got):\n%s", diff)
			}
		})
	}
}

// jobShape is the part of a Job's spec that makes it an Indexed Job.
type jobShape struct {
	Mode                              *batchv1.CompletionMode
	Completions, Parallelism          *int32
	BackoffLimit, PerIndex, MaxFailed *int32
	Indexed                           bool
}

func shapeOf(t *testing.T, job *batchv1.Job) jobShape {
	t.Helper()
	task, err := pipeline.DecodeTask([]byte(job.Spec.Template.Spec.Containers[0].Env[0].Value))
	if err != nil {
		t.Fatal(err)
	}
	return jobShape{
		Mode: job.Spec.CompletionMode, Completions: job.Spec.Completions, Parallelism: job.Spec.Parallelism,
		BackoffLimit: job.Spec.BackoffLimit, PerIndex: job.Spec.BackoffLimitPerIndex, MaxFailed: job.Spec.MaxFailedIndexes,
		Indexed: task.Indexed,
	}
}
