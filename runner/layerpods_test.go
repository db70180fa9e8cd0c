package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
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

// The layer workers as pods: N runners, each one index of an Indexed Job
// pruning its range of mnist-8's blocks and handing its partial to index
// 0 through S3, publish the model one runner with layers: 1 publishes,
// to the digest, with the same metrics; the indices above 0 say index 0
// publishes, and the partials are gone afterwards. The data shards run
// inside each index.
func TestLayerIndexedRunnersMatchOneWorker(t *testing.T) {
	orttest.Require(t)
	want, err := Execute(context.Background(), layerTask(t, 1, 2, ""), Options{})
	if err != nil {
		t.Fatalf("layers 1: %v", err)
	}
	s3 := storagetest.StartS3(t, "out")
	for _, n := range []int{2, 3} {
		task := layerTask(t, int32(n), 2, s3.URI("out", fmt.Sprintf("layers-%d", n)))
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
		keys, err := s3.Keys("out")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			if strings.Contains(k, "/"+shardsDir+"/") {
				t.Errorf("partial left behind: %s", k)
			}
		}
	}
}

// Index 0 refuses a partial whose bytes do not match its committed
// digest, naming the index, and waits no longer than KOMPRESS_SHARD_WAIT
// for an index that never hands its partial, naming it; a retried index
// reuses the partial it committed.
func TestLayerIndexedRunnerRefusesCorruptAndMissingPartials(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "out")

	missing := layerTask(t, 3, 1, s3.URI("out", "missing"))
	_, errs := runIndices(t, missing, 2*time.Second, 0, 2)
	if err := errs[0]; err == nil || !strings.Contains(err.Error(), "index 1 of 3 did not share its partial statistics within 2s") {
		t.Errorf("index 0 without index 1: %v, want it named", err)
	}
	if ExitCode(errs[0]) == pipeline.ExitBadInput {
		t.Errorf("a missing index is judged bad input: %v", errs[0])
	}

	task := layerTask(t, 2, 1, s3.URI("out", "corrupt"))
	if _, errs := runIndices(t, task, time.Minute, 1); errs[1] != nil {
		t.Fatalf("index 1: %v", errs[1])
	}
	// A retry of index 1 finds its committed partial and hands it again.
	if res, errs := runIndices(t, task, time.Minute, 1); errs[1] != nil || res[1].Output != nil {
		t.Fatalf("index 1 again: %+v, %v", res[1], errs[1])
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
	_, errs = runIndices(t, task, time.Minute, 0)
	if err := errs[0]; !errors.Is(err, storage.ErrDigestMismatch) || !strings.Contains(err.Error(), "index 1's partial") {
		t.Errorf("index 0 with a corrupt partial of index 1: %v, want a digest mismatch naming index 1", err)
	}
}
