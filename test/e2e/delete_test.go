//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/test/e2e/s3proxy"
)

// artifactKeys lists the bucket keys of a finished run: each stage's
// model and result.json, and release.json and report.html beside the final
// model.
func artifactKeys(t *testing.T, cpj *v1alpha1.CompressionJob) (intermediate, final []string) {
	t.Helper()
	n := len(cpj.Status.Stages)
	for i, s := range cpj.Status.Stages {
		keys := []string{bucketKey(t, s.Output.URI), bucketKey(t, pipeline.SiblingURI(s.Output.URI, pipeline.ResultFile))}
		if i < n-1 {
			intermediate = append(intermediate, keys...)
			continue
		}
		final = append(keys, bucketKey(t, pipeline.SiblingURI(s.Output.URI, pipeline.ReleaseFile)),
			bucketKey(t, pipeline.SiblingURI(s.Output.URI, pipeline.ReportFile)))
	}
	return intermediate, final
}

func inBucket(t *testing.T, key string) bool {
	t.Helper()
	_, err := cl.s3.Object(bucket, key)
	return err == nil
}

// deleteCPJ deletes a CompressionJob as a user would (kubectl delete, which
// waits for it to be gone).
func deleteCPJ(t *testing.T, ns, name string) {
	t.Helper()
	if kubectl, err := exec.LookPath("kubectl"); err == nil {
		out, err := exec.Command(kubectl, "delete", "--kubeconfig", cl.cp.Kubeconfig, "-n", ns, "--timeout=5m",
			"compressionjobs.kompress.dev", name).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl delete: %v\n%s", err, out)
		}
		return
	}
	obj := &v1alpha1.CompressionJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := cl.client.Delete(context.Background(), obj); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Minute, name+" gone", func() (bool, string) {
		err := cl.client.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
		return client.IgnoreNotFound(err) == nil && err != nil, "still there"
	})
}

// waitNoChildren waits until the CompressionJob's Jobs (stage and cleanup)
// and pods are gone.
func waitNoChildren(t *testing.T, ns, name string) {
	t.Helper()
	eventually(t, 60*time.Second, "Jobs and pods of "+name+" gone", func() (bool, string) {
		jobs, pods := jobsOf(t, ns, name), podsOf(t, ns, name)
		return len(jobs) == 0 && len(pods) == 0, cl.diagnose(ns)
	})
}

// Deleting a CompressionJob (intermediateArtifacts: Retain, the default)
// removes its Jobs and pods and never an artifact.
func TestDeleteKeepsArtifacts(t *testing.T) {
	const ns, name = "e2e-delete", "retained"
	rec := record(t, ns, name)
	apply(t, ns, manifest(t, twoStageJob(t, ns, name)))
	done := rec.waitFor(t, 60*time.Second, "Ready", ready).Object
	if len(done.Finalizers) != 0 {
		t.Errorf("a Retain job has finalizers %v", done.Finalizers)
	}
	inter, final := artifactKeys(t, done)
	deleteCPJ(t, ns, name)
	waitNoChildren(t, ns, name)
	for _, k := range append(inter, final...) {
		if !inBucket(t, k) {
			t.Errorf("%s was deleted with the CompressionJob", k)
		}
	}
}

// intermediateArtifacts: Delete removes every stage's artifact but the
// final model's through the finalizer's cleanup Job, then lets go.
func TestDeleteRemovesIntermediates(t *testing.T) {
	const ns, name = "e2e-delete", "tidy"
	rec := record(t, ns, name)
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
	apply(t, ns, manifest(t, cpj))
	done := rec.waitFor(t, 60*time.Second, "Ready", ready).Object
	if len(done.Finalizers) != 1 || done.Finalizers[0] != controllers.FinalizerArtifacts {
		t.Errorf("finalizers %v, want [%s]", done.Finalizers, controllers.FinalizerArtifacts)
	}
	inter, final := artifactKeys(t, done)
	deleteCPJ(t, ns, name)
	waitEvent(t, ns, name, controllers.EventIntermediatesDeleted, done.Status.Stages[0].Output.URI, 30*time.Second)
	waitNoChildren(t, ns, name)
	for _, k := range inter {
		if inBucket(t, k) {
			t.Errorf("intermediate %s is still in the bucket", k)
		}
	}
	for _, k := range final {
		if !inBucket(t, k) {
			t.Errorf("final artifact %s was deleted", k)
		}
	}
	if n := len(startsIn(ns)); n < 3 {
		t.Errorf("%d processes ran in %s, want the cleanup among them", n, ns)
	}
}

// With the storage unreachable the cleanup Job fails after its bounded
// retries; the finalizer is released with a warning naming what is left,
// so deleting the CompressionJob never hangs.
func TestDeleteWithStorageUnreachable(t *testing.T) {
	t.Parallel()
	const ns, name = "e2e-delete", "unreachable"
	// A proxy of its own, so taking it down affects this job alone.
	p, err := s3proxy.Start(cl.s3.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rec := record(t, ns, name)
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
	for _, u := range []*string{&cpj.Spec.Source.URI, &cpj.Spec.Output.URI, &cpj.Spec.Dataset.URI} {
		*u = viaEndpoint(t, *u, p.Endpoint)
	}
	apply(t, ns, manifest(t, cpj))
	done := rec.waitFor(t, 60*time.Second, "Ready", ready).Object
	inter, final := artifactKeys(t, done)

	p.SetDown(true)
	start := time.Now()
	deleteCPJ(t, ns, name)
	took := time.Since(start)
	ev := waitEvent(t, ns, name, controllers.EventIntermediatesNotDeleted, "BackoffLimitExceeded", 10*time.Second)
	t.Logf("deletion with storage down released after %s: %s", took.Round(time.Second), ev.Note)
	if !strings.Contains(ev.Note, done.Status.Stages[0].Output.URI) {
		t.Errorf("the warning does not name the artifact left behind: %s", ev.Note)
	}
	if p.Resets() == 0 {
		t.Error("the cleanup never tried the storage")
	}
	waitNoChildren(t, ns, name)
	for _, k := range append(inter, final...) {
		if !inBucket(t, k) {
			t.Errorf("%s is gone although the storage was unreachable", k)
		}
	}
}
