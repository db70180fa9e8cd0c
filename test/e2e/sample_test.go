//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/storage"
)

// sampleTarget is the target from `kubectl apply` to Ready.
const sampleTarget = 60 * time.Second

// The sample from config/samples, applied with kubectl: mnist-8 pruned then
// quantized to int8, read from and written to S3 with the Secret's
// credentials, on the edge pool. It becomes Ready with the final model in
// the bucket at the reported URI, digest and size, its accuracy as
// reported, and release.json beside it.
func TestSample(t *testing.T) {
	const ns, name = "e2e-sample", "mnist-prune-int8"
	rec := record(t, ns, name)
	raw, err := os.ReadFile(filepath.Join(cl.repo, "config", "samples", "kompress_v1alpha1_compressionjob.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	apply(t, ns, renderManifest(t, raw))
	first := rec.waitFor(t, 10*time.Second, "first version", func(*v1alpha1.CompressionJob) bool { return true })
	saveFixture(t, "sample-created", first)
	running := rec.waitFor(t, sampleTarget, "running stage", func(c *v1alpha1.CompressionJob) bool {
		return len(c.Status.Stages) > 0 && c.Status.Stages[0].State == v1alpha1.StageRunning
	})
	saveFixture(t, "sample-running", running)
	done := rec.waitFor(t, 3*sampleTarget, "Ready", ready)
	elapsed := done.At.Sub(start)
	t.Logf("TARGET sample apply -> Ready: %s (target %s)", elapsed.Round(10*time.Millisecond), sampleTarget)
	if elapsed > sampleTarget {
		t.Errorf("the sample took %s from kubectl apply to Ready, over the %s target", elapsed, sampleTarget)
	}
	saveFixture(t, "sample-ready", done)
	cpj := done.Object

	if diff := cmp.Diff([]kstatus.Status{kstatus.InProgressStatus, kstatus.CurrentStatus}, rec.kstatuses()); diff != "" {
		t.Errorf("kstatus over the run (-want +got):\n%s", diff)
	}
	for _, s := range cpj.Status.Stages {
		if s.State != v1alpha1.StageSucceeded {
			t.Errorf("stage %s is %s (%s), want Succeeded", s.Name, s.State, s.Message)
		}
	}
	out := cpj.Status.Output
	if out == nil {
		t.Fatal("Ready without status.output")
	}
	if c := meta.FindStatusCondition(cpj.Status.Conditions, v1alpha1.ConditionReady); c == nil || !strings.Contains(c.Message, out.Digest) {
		t.Errorf("Ready condition %+v does not name the digest %s", c, out.Digest)
	}

	// The model in the bucket is the one status reports.
	model := verifyArtifact(t, out)
	// Its accuracy, recomputed here with ONNX Runtime on the bucket's
	// bytes and the bucket's dataset, is the reported one.
	data, err := cl.s3.Object(bucket, sampleDatasetKey)
	if err != nil {
		t.Fatal(err)
	}
	acc := accuracy(t, model, data)
	reported, err := strconv.ParseFloat(out.Metrics[pipeline.MetricAccuracy], 64)
	if err != nil {
		t.Fatalf("metrics %v: %v", out.Metrics, err)
	}
	if math.Abs(acc-reported) > 1e-9 {
		t.Errorf("accuracy recomputed from the bucket = %v, status reports %v", acc, reported)
	}
	if acc < 0.97 {
		t.Errorf("accuracy %v: the pruned int8 model is broken", acc)
	}
	t.Logf("final model %s: %d bytes, accuracy %.4f (drop %s), sparsity %s", out.URI, out.SizeBytes, acc,
		out.Metrics[pipeline.MetricAccuracyDrop], out.Metrics[pipeline.MetricSparsity])

	// Stage 1 read what stage 0 wrote, and release.json ties them together.
	// The sample pins neither its model nor its dataset: the runner keys
	// the artifacts by what it read (contentKey), not by URIs.
	s0 := cpj.Status.Stages[0]
	if s0.Output == nil || s0.ContentKey == "" || s0.ContentKey == s0.CacheKey || !strings.Contains(s0.Output.URI, "/"+s0.ContentKey+"/") {
		t.Errorf("stage 0: output %+v, content key %q, cache key %q; want the output under a content key of its own", s0.Output, s0.ContentKey, s0.CacheKey)
	}
	verifyRelease(t, cpj)

	// Both stages ran on the edge pool, one runner process each.
	started := startsIn(ns)
	if len(started) != 2 {
		t.Errorf("%d runner processes started, want 2 (one per stage): %+v", len(started), started)
	}
	for _, s := range started {
		if !strings.HasPrefix(s.Node, "edge-") {
			t.Errorf("pod %s ran on node %s, outside the edge pool", s.Pod, s.Node)
		}
	}
}

// verifyArtifact reads the artifact from the bucket (bypassing HTTP) and
// checks it against status: size, sha256, and ONNX Runtime loads it.
func verifyArtifact(t *testing.T, a *v1alpha1.Artifact) []byte {
	t.Helper()
	b, err := cl.s3.Object(bucket, bucketKey(t, a.URI))
	if err != nil {
		t.Fatalf("the reported model %s is not in the bucket: %v", a.URI, err)
	}
	if int64(len(b)) != a.SizeBytes {
		t.Errorf("%s holds %d bytes, status reports %d", a.URI, len(b), a.SizeBytes)
	}
	if d := storage.Digest(b); d != a.Digest {
		t.Errorf("%s has digest %s, status reports %s", a.URI, d, a.Digest)
	}
	return b
}

// accuracy is top-1 accuracy of the model on an .npz of MNIST images and
// labels, computed sample by sample with ONNX Runtime.
func accuracy(t *testing.T, model, npz []byte) float64 {
	t.Helper()
	ds, err := dataset.Load("mnist.npz", npz)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := ort.NewSession("final", model, ort.Options{})
	if err != nil {
		t.Fatalf("ONNX Runtime cannot load the final model: %v", err)
	}
	defer sess.Close()
	in, out := sess.Inputs[0], sess.Outputs[0]
	dims := append([]int64(nil), in.Shape...)
	dims[0] = 1
	correct := 0
	for i := 0; i < ds.Len(); i++ {
		x := append([]float32(nil), ds.Sample(i)...)
		res, err := sess.Run(map[string]*onnx.Tensor{in.Name: onnx.NewTensor(dims, x)})
		if err != nil {
			t.Fatal(err)
		}
		logits := res[out.Name].Data.([]float32)
		best := 0
		for k := range logits {
			if logits[k] > logits[best] {
				best = k
			}
		}
		if int64(best) == ds.Labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(ds.Len())
}

// verifyRelease checks release.json beside the final model: the chain's
// stages with the cache keys and outputs status reports, the source digest,
// the final metrics.
func verifyRelease(t *testing.T, cpj *v1alpha1.CompressionJob) runner.Release {
	t.Helper()
	out := cpj.Status.Output
	b, err := cl.s3.Object(bucket, bucketKey(t, pipeline.SiblingURI(out.URI, pipeline.ReleaseFile)))
	if err != nil {
		t.Fatalf("no release.json beside %s: %v", out.URI, err)
	}
	var rel runner.Release
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rel); err != nil {
		t.Fatalf("release.json: %v\n%s", err, b)
	}
	src, err := cl.s3.Object(bucket, bucketKey(t, cpj.Spec.Source.URI))
	if err != nil {
		t.Fatal(err)
	}
	type link struct{ Name, CacheKey, ContentKey, URI, Digest string }
	var want, got []link
	for _, s := range cpj.Status.Stages {
		want = append(want, link{s.Name, s.CacheKey, s.ContentKey, s.Output.URI, s.Output.Digest})
	}
	if cpj.Spec.Variants != nil {
		// A sweep's status lists every variant's runs ("prune/v2"); the
		// selected model's release.json its own chain, one run a stage.
		runs := want
		want = nil
		for _, r := range rel.Stages {
			for _, s := range runs {
				if s.CacheKey == r.CacheKey {
					s.Name, _, _ = strings.Cut(s.Name, "/")
					want = append(want, s)
				}
			}
		}
		if len(want) != len(cpj.Spec.Stages) {
			t.Errorf("release.json names %d runs of the status, want one per stage (%d)", len(want), len(cpj.Spec.Stages))
		}
	}
	for _, s := range rel.Stages {
		got = append(got, link{s.Stage.Name, s.CacheKey, s.ContentKey, s.Output.URI, s.Output.Digest})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("release.json stages (-status +release):\n%s", diff)
	}
	if diff := cmp.Diff(*out, rel.Model); diff != "" {
		t.Errorf("release.json model (-status +release):\n%s", diff)
	}
	if rel.Source.URI != cpj.Spec.Source.URI || rel.Source.Digest != storage.Digest(src) {
		t.Errorf("release.json source = %+v, want %s with digest %s", rel.Source, cpj.Spec.Source.URI, storage.Digest(src))
	}
	if rel.Version != runner.ReleaseVersion || rel.RunnerVersion == "" || rel.CacheVersion == "" {
		t.Errorf("release.json version fields: %q runner %q cache %q", rel.Version, rel.RunnerVersion, rel.CacheVersion)
	}
	return rel
}
