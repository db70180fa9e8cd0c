package runner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// layerTask is hessian pruning of mnist-8 with its blocks dealt to
// layers workers (and the data passes to shards), its output under out.
func layerTask(t *testing.T, layers, shards int32, out string) pipeline.Task {
	spec, _ := fixture(t, hessianStageSpec())
	spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: shards, Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}
	if out != "" {
		spec.Output.URI = out
	}
	task := firstTask(t, spec)
	task.Indexed = layers > 1
	return task
}

// runIndices runs the given indices of task at once, as the pods of its
// Indexed Job, and returns their results by index.
func runIndices(t *testing.T, task pipeline.Task, wait time.Duration, indices ...int) (map[int]pipeline.Result, map[int]error) {
	res, errs := map[int]pipeline.Result{}, map[int]error{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range indices {
		wg.Go(func() {
			r, err := Execute(context.Background(), task, Options{ShardIndex: i, ShardWait: wait})
			mu.Lock()
			res[i], errs[i] = r, err
			mu.Unlock()
		})
	}
	wg.Wait()
	return res, errs
}

// layerMethods are the Hessian stages whose blocks run as layer pods,
// each making its task with layers workers, shards data shards and its
// output under out: hessian pruning of mnist-8 (3 blocks) and GPTQ int4
// of a 2-block decoder (4 blocks).
var layerMethods = []struct {
	name string
	task func(t *testing.T, layers, shards int32, out string) pipeline.Task
}{
	{"hessian", layerTask},
	{"gptq", gptqLayerTask},
}

// The layer workers as pods: N runners, each one index of an Indexed Job
// pruning (or rounding with GPTQ) its range of blocks and handing its
// partial to index 0 through S3, publish the model one runner with
// layers: 1 publishes, to the digest, with the same metrics (the
// evaluation runs it in ONNX Runtime); the indices above 0 say index 0
// publishes, and the partials are gone afterwards. The data shards run
// inside each index.
func TestLayerIndexedRunnersMatchOneWorker(t *testing.T) {
	orttest.Require(t)
	for _, m := range layerMethods {
		t.Run(m.name, func(t *testing.T) {
			want, err := Execute(context.Background(), m.task(t, 1, 2, ""), Options{})
			if err != nil {
				t.Fatalf("layers 1: %v", err)
			}
			s3 := storagetest.StartS3(t, "out")
			for _, n := range []int{2, 3} {
				task := m.task(t, int32(n), 2, s3.URI("out", fmt.Sprintf("layers-%d", n)))
				matchOneWorker(t, s3, task, n, want)
			}
		})
	}
}

// matchOneWorker runs the n indices of task at once and checks that
// index 0 published what one worker did (want).
func matchOneWorker(t *testing.T, s3 *storagetest.S3, task pipeline.Task, n int, want pipeline.Result) {
	t.Helper()
	if !task.LayerIndexed() || task.IndexedPods() != n {
		t.Fatalf("layers %d: layer indexed %v, %d pods", n, task.LayerIndexed(), task.IndexedPods())
	}
	indices := make([]int, n)
	for i := range indices {
		indices[i] = i
	}
	res, errs := runIndices(t, task, 5*time.Minute, indices...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("layers %d, index %d: %v", n, i, err)
		}
	}
	got := res[0].Output
	if got == nil || got.Digest != want.Output.Digest {
		t.Fatalf("layers %d: index 0 published %+v, layers 1 %s", n, got, want.Output.Digest)
	}
	if diff := cmp.Diff(deterministic(want.Output.Metrics), deterministic(got.Metrics)); diff != "" {
		t.Errorf("layers %d: metrics (-layers 1 +indices):\n%s", n, diff)
	}
	for i := 1; i < n; i++ {
		if r := res[i]; r.Output != nil || !strings.Contains(r.Message, fmt.Sprintf("index %d of %d shared its layers' partial; index 0 assembles and publishes", i, n)) {
			t.Errorf("layers %d, index %d: %+v, want no output and a message saying index 0 publishes", n, i, r)
		}
	}
	noPartialsLeft(t, s3)
}

// Index 0 refuses a partial whose bytes do not match its committed
// digest, naming the index, and waits no longer than KOMPRESS_SHARD_WAIT
// for an index that never hands its partial, naming it; a retried index
// reuses the partial it committed, without processing its blocks again.
func TestLayerIndexedRunnerRefusesCorruptAndMissingPartials(t *testing.T) {
	orttest.Require(t)
	for _, m := range layerMethods {
		t.Run(m.name, func(t *testing.T) {
			s3 := storagetest.StartS3(t, "out")
			missing := m.task(t, 3, 1, s3.URI("out", "missing"))
			_, errs := runIndices(t, missing, 2*time.Second, 0, 2)
			if err := errs[0]; err == nil || !strings.Contains(err.Error(), "index 1 of 3 did not share its partial statistics within 2s") {
				t.Errorf("index 0 without index 1: %v, want it named", err)
			}
			if ExitCode(errs[0]) == pipeline.ExitBadInput {
				t.Errorf("a missing index is judged bad input: %v", errs[0])
			}
			refuseCorrupt(t, m.task(t, 2, 1, s3.URI("out", "corrupt")))
		})
	}
}

// refuseCorrupt runs index 1 of task, then again (a retry, which must
// hand the partial it committed without processing its blocks), flips a
// bit of that partial and checks that index 0 refuses it, naming index 1.
func refuseCorrupt(t *testing.T, task pipeline.Task) {
	t.Helper()
	ctx := context.Background()
	if _, errs := runIndices(t, task, time.Minute, 1); errs[1] != nil {
		t.Fatalf("index 1: %v", errs[1])
	}
	var log bytes.Buffer
	o := Options{ShardIndex: 1, ShardWait: time.Minute, Log: slog.New(slog.NewTextHandler(&log, nil))}
	if res, err := Execute(ctx, task, o); err != nil || res.Output != nil {
		t.Fatalf("index 1 again: %+v, %v", res, err)
	}
	if strings.Contains(log.String(), `msg="layer index `) || !strings.Contains(log.String(), `msg="partial handed to index 0"`) {
		t.Errorf("index 1 again processed its blocks, or handed nothing:\n%s", log.String())
	}
	part := pipeline.JoinURI(pipeline.SiblingURI(task.OutputURI, shardsDir), "layers", "1-of-2")
	b, _, err := storage.ReadAll(ctx, part, "")
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1
	if err := storage.Delete(ctx, part); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.WriteBytes(ctx, part, b); err != nil {
		t.Fatal(err)
	}
	_, errs := runIndices(t, task, time.Minute, 0)
	if err := errs[0]; !errors.Is(err, storage.ErrDigestMismatch) || !strings.Contains(err.Error(), "index 1's partial") {
		t.Errorf("index 0 with a corrupt partial of index 1: %v, want a digest mismatch naming index 1", err)
	}
}

// gptqLayerTask is int4 GPTQ (MatMulNBits, blocks of 32 with zero points) of a 2-block
// decoder calibrated on 16 sequences, with its blocks dealt to layers
// workers (and the data passes to shards), its output under out.
func gptqLayerTask(t *testing.T, layers, shards int32, out string) pipeline.Task {
	dir := t.TempDir()
	raw, data, err := modelgen.DecoderFiles(modelgen.SmallDecoder, 16, 16, 2)
	if err != nil {
		t.Fatal(err)
	}
	stage := int4Stage()
	stage.Name, stage.Quantize.Algorithm, stage.Quantize.Calibration.Samples = "gptq", v1alpha1.AlgorithmGPTQ, 16
	stage.Quantize.Symmetric = nil // the default: blocks with zero points
	return pinnedLayerTask(t, dir, raw, data, stage, &v1alpha1.ParallelismSpec{Shards: shards, Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}, out)
}

// pinnedLayerTask is the first task of a job that runs stage on the model raw
// with the tokens npz under dir, split as par says (an Indexed task for
// layers above 1), publishing to out (dir/out when empty). The model and
// data are pinned, as the mnist fixture is: the task is keyed before it
// runs, and the tests find the partials under that key.
func pinnedLayerTask(t *testing.T, dir string, raw, npz []byte, stage v1alpha1.Stage, par *v1alpha1.ParallelismSpec, out string) pipeline.Task {
	t.Helper()
	model, tokens := writeFile(t, dir, "model.onnx", raw), writeFile(t, dir, "tokens.npz", npz)
	if out == "" {
		out = storage.FileURI(filepath.Join(dir, "out"))
	}
	spec := &v1alpha1.CompressionJobSpec{
		Source:      v1alpha1.ModelSource{URI: storage.FileURI(filepath.Join(dir, "model.onnx")), SHA256: model},
		Output:      v1alpha1.OutputSpec{URI: out},
		Dataset:     &v1alpha1.DatasetSpec{URI: storage.FileURI(filepath.Join(dir, "tokens.npz")), SHA256: tokens, Format: v1alpha1.DatasetFormatNPZ},
		Evaluation:  v1alpha1.EvaluationSpec{Samples: 8, LatencyBatchSize: 1, LatencyRuns: 2},
		Parallelism: par,
		Stages:      []v1alpha1.Stage{stage},
	}
	task := firstTask(t, spec)
	task.Indexed = par.Layers > 1
	return task
}

// writeFile writes b to dir/name and returns its sha256 in hex.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}
