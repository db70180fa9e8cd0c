//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/hack/modelgen"
)

// layeredJob prunes with hessian, each block calibrated on the original
// model's inputs, with its blocks dealt to layers workers and its data
// passes to 2 shards, then quantizes to static int8.
func layeredJob(t *testing.T, ns, name string, layers int32) *v1alpha1.CompressionJob {
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2, Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}
	cpj.Spec.Evaluation.Samples = 256
	cpj.Spec.Stages[0].Prune = &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.6", CalibrationSamples: 128}
	return cpj
}

// gptqLayeredJob rounds a 2-block generated decoder (5 segments: GPTQ
// walks it block by block; mnist-8's one MatMul has no cut) to int4 with
// GPTQ on 16 token sequences, its blocks dealt to layers workers and its
// data passes to 2 shards. The decoder and its tokens are put in the
// bucket under decoder/.
func gptqLayeredJob(t *testing.T, ns, name string, layers int32) *v1alpha1.CompressionJob {
	t.Helper()
	model, tokens, err := modelgen.DecoderFiles(modelgen.SmallDecoder, 16, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	cpj := quantizeJob(ns, name)
	cpj.Spec.Source.URI, cpj.Spec.Source.SHA256 = s3URI("decoder/model.onnx"), putObject(t, "decoder/model.onnx", model)
	cpj.Spec.Dataset.URI, cpj.Spec.Dataset.SHA256 = s3URI("decoder/tokens.npz"), putObject(t, "decoder/tokens.npz", tokens)
	cpj.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2, Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}
	cpj.Spec.Evaluation.Samples = 8
	cpj.Spec.Stages = []v1alpha1.Stage{{Name: "gptq", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize,
		Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, BlockSize: 32, Format: v1alpha1.FormatMatMulNBits,
			Algorithm: v1alpha1.AlgorithmGPTQ, SensitiveLayers: v1alpha1.SensitiveInt4, Calibration: v1alpha1.Calibration{Samples: 16}}}}}
	return cpj
}

// putObject puts data in the bucket under key (the same bytes for every
// caller) and returns its sha256.
func putObject(t *testing.T, key string, data []byte) string {
	t.Helper()
	if err := cl.s3.Put(bucket, key, data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Model parallelism on a cluster: with layers: 3 the hessian stage runs
// as an Indexed Job of 3 pods, each pruning one of mnist-8's 3 blocks
// (with its 2 data shards as workers of its own) and handing its partial
// to index 0 through S3, which assembles and publishes the model layers:
// 1 writes, to the digest. The int8 stage after it, not a Hessian one,
// runs as an Indexed Job of its 2 shards in both jobs. A GPTQ stage with
// layers: 3 is an Indexed Job of 3 pods too, each rounding its range of
// a decoder's 5 segments, and index 0 publishes the digest layers: 1
// writes.
func TestLayerIndexedJob(t *testing.T) {
	const ns = "e2e-layers"
	jobs := []*v1alpha1.CompressionJob{
		layeredJob(t, ns, "one", 1), layeredJob(t, ns, "two", 3),
		gptqLayeredJob(t, ns, "gptq-one", 1), gptqLayeredJob(t, ns, "gptq-two", 3),
	}
	recs := map[string]*recorder{}
	for _, j := range jobs {
		recs[j.Name] = record(t, ns, j.Name)
		apply(t, ns, manifest(t, j))
	}
	for one, two := range map[string]string{"one": "two", "gptq-one": "gptq-two"} {
		want := recs[one].waitFor(t, 3*time.Minute, "Ready", ready).Object
		got := recs[two].waitFor(t, 3*time.Minute, "Ready", ready).Object
		for i, s := range got.Status.Stages {
			w := want.Status.Stages[i]
			if s.Output == nil || w.Output == nil || s.Output.Digest != w.Output.Digest {
				t.Errorf("job %s, stage %s: layers 3 wrote %+v, layers 1 %+v", two, s.Name, s.Output, w.Output)
			}
		}
	}
	wantJobs := map[string]string{
		"one/prune":     `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"one/int8":      `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"two/prune":     `mode Indexed, completions 3, succeeded 3, completed indexes "0-2"`,
		"two/int8":      `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"gptq-one/gptq": `mode Indexed, completions 2, succeeded 2, completed indexes "0,1"`,
		"gptq-two/gptq": `mode Indexed, completions 3, succeeded 3, completed indexes "0-2"`,
	}
	gotJobs := map[string]string{}
	for _, j := range jobs {
		for _, job := range jobsOf(t, ns, j.Name) {
			gotJobs[j.Name+"/"+job.Labels[controllers.LabelStage]] = fmt.Sprintf("mode %s, completions %d, succeeded %d, completed indexes %q",
				ptr.Deref(job.Spec.CompletionMode, batchv1.NonIndexedCompletion), ptr.Deref(job.Spec.Completions, 1), job.Status.Succeeded, job.Status.CompletedIndexes)
		}
	}
	if diff := cmp.Diff(wantJobs, gotJobs); diff != "" {
		t.Errorf("the stage Jobs, by job/stage (-want +got):\n%s", diff)
	}
}
