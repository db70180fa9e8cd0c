package runner

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// hessianStageSpec is hessian pruning of mnist-8 on 128 samples.
func hessianStageSpec() v1alpha1.Stage {
	return v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{
		Method: v1alpha1.PruneHessian, Sparsity: "0.6", CalibrationSamples: 128,
	}}}
}

// entropyStageSpec is static int8 calibrated by entropy on 128 samples.
func entropyStageSpec() v1alpha1.Stage {
	s := quantizeStageSpec(v1alpha1.QuantizeStatic)
	s.Quantize.Calibration.Method, s.Quantize.Calibration.Samples = v1alpha1.CalibrationEntropy, 128
	return s
}

// deterministic drops the metrics that are timed.
func deterministic(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if !strings.HasPrefix(k, "latency") {
			out[k] = v
		}
	}
	return out
}

// The target at the runner: 4 runners, each one index of an
// Indexed Job meeting in object storage, publish the model one runner
// with shards: 1 publishes, to the digest, with the same evaluation
// metrics; the partials are gone afterwards, and an index that comes
// late finds the result.
func TestIndexedRunnersMatchOneShard(t *testing.T) {
	orttest.Require(t)
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "out")
	for _, stage := range []v1alpha1.Stage{hessianStageSpec(), entropyStageSpec()} {
		t.Run(stage.Name, func(t *testing.T) {
			spec, _ := fixture(t, stage)
			spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 1}
			want, err := Execute(ctx, firstTask(t, spec), Options{})
			if err != nil {
				t.Fatalf("shards 1: %v", err)
			}

			spec.Parallelism.Shards = 4
			spec.Output.URI = s3.URI("out", stage.Name)
			task := firstTask(t, spec)
			task.Indexed = true
			res := make([]pipeline.Result, 4)
			errs := make([]error, 4)
			var wg sync.WaitGroup
			for i := range 4 {
				wg.Go(func() {
					res[i], errs[i] = Execute(ctx, task, Options{ShardIndex: i, ShardWait: 5 * time.Minute})
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatalf("indices: %v", err)
			}
			got := res[0].Output
			if got == nil {
				t.Fatalf("index 0 published nothing: %+v", res[0])
			}
			if got.Digest != want.Output.Digest {
				t.Errorf("4 indices wrote %s, shards 1 wrote %s", got.Digest, want.Output.Digest)
			}
			if diff := cmp.Diff(deterministic(want.Output.Metrics), deterministic(got.Metrics)); diff != "" {
				t.Errorf("metrics of 4 indices (-shards 1 +4 indices):\n%s", diff)
			}
			// An index still reading the last round's partials when index 0
			// publishes (and deletes them) finds the result instead: on a
			// loaded machine either may happen.
			for i, r := range res[1:] {
				shared := r.Output == nil && strings.Contains(r.Message, "index 0 publishes")
				found := r.Cached && r.Output != nil && r.Output.Digest == got.Digest
				if !shared && !found {
					t.Errorf("index %d: %+v, want no output and a message saying index 0 publishes, or the published result", i+1, r)
				}
			}
			noPartialsLeft(t, s3)
			late, err := Execute(ctx, task, Options{ShardIndex: 3})
			if err != nil || !late.Cached || late.Output.Digest != got.Digest {
				t.Errorf("a late index 3: %+v, %v; want the cached result", late, err)
			}
		})
	}
}

// An index outside the count is a bad task.
func TestIndexedRunnerRefusesAnIndexOutOfRange(t *testing.T) {
	orttest.Require(t)
	spec, _ := fixture(t, hessianStageSpec())
	spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2}
	task := firstTask(t, spec)
	task.Indexed = true
	_, err := Execute(context.Background(), task, Options{ShardIndex: 2})
	if ExitCode(err) != pipeline.ExitUsage || !strings.Contains(err.Error(), "index 2 of an Indexed Job of task.shards 2 pods") {
		t.Errorf("err = %v (exit %d), want a bad task naming the index", err, ExitCode(err))
	}
}

// An index whose peers never come fails its round at the deadline with a
// failure worth a retry that names them, not with a verdict on the model:
// dynamic quantization has no calibration, so the round that times out is
// the evaluation's.
func TestIndexedRunnerTimesOutRetryably(t *testing.T) {
	orttest.Require(t)
	spec, _ := fixture(t, quantizeStageSpec(v1alpha1.QuantizeDynamic))
	spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2}
	task := firstTask(t, spec)
	task.Indexed = true
	res, err := Execute(context.Background(), task, Options{ShardIndex: 0, ShardWait: 300 * time.Millisecond})
	want := "round evaluation: index 1 of 2 did not share its partial statistics within 300ms"
	if err == nil || !strings.Contains(err.Error(), want) || ExitCode(err) != pipeline.ExitFailure {
		t.Errorf("err = %v (exit %d, reason %s), want exit %d saying %q", err, ExitCode(err), res.Reason, pipeline.ExitFailure, want)
	}
}

// noPartialsLeft checks that the bucket "out" holds no partial: the
// publishing index deletes them once the result is written.
func noPartialsLeft(t *testing.T, s3 *storagetest.S3) {
	t.Helper()
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
