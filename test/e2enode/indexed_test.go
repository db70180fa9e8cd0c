//go:build e2enode

package e2enode

import (
	"context"
	"fmt"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

// A stage with shards: 2 runs as an Indexed Job of two runner containers
// at once: the Job controller gives each its JOB_COMPLETION_INDEX, the two
// exchange their partial Hessians through the S3 server, and both end
// Succeeded with the stage Ready.
func TestIndexedJobOnRealNode(t *testing.T) {
	install(t)
	const name = "indexed"
	job := fmt.Sprintf(`apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: %s}
spec:
  source: {uri: "s3://%s/mnist/mnist-8.onnx"}
  output: {uri: "s3://%s/out/%s"}
  dataset: {uri: "s3://%s/mnist/mnist-test.npz"}
  storage: {secretRef: {name: %s}}
  parallelism: {shards: 2}
  # Both indices must fit on the one node at once (the chart asks 1 CPU
  # a stage pod, the node has 2).
  scheduling: {resources: {requests: {cpu: 250m}}}
  evaluation: {samples: 200, latencyRuns: 5}
  stages:
  - name: prune
    type: Prune
    prune: {method: hessian, sparsity: "0.6", calibrationSamples: 128}
`, name, bucket, bucket, name, bucket, secretName)
	kubectlApply(t, jobNamespace, endpointed(t, []byte(job)))
	t.Cleanup(func() { // free the node for the next tests whatever happened
		_ = nd.client.Delete(context.Background(), &v1alpha1.CompressionJob{ObjectMeta: metav1.ObjectMeta{Namespace: jobNamespace, Name: name}})
	})
	cpj := waitCPJ(t, name, 180*time.Second, "Ready", ready)
	var jobs batchv1.JobList
	if err := nd.client.List(context.Background(), &jobs, client.InNamespace(jobNamespace), client.MatchingLabels{controllers.LabelJob: name}); err != nil || len(jobs.Items) != 1 {
		t.Fatalf("Jobs of %s: %d (%v)", name, len(jobs.Items), err)
	}
	j := jobs.Items[0]
	got := fmt.Sprintf("mode %s, succeeded %d, completed indexes %q", ptr.Deref(j.Spec.CompletionMode, ""), j.Status.Succeeded, j.Status.CompletedIndexes)
	if want := `mode Indexed, succeeded 2, completed indexes "0,1"`; got != want {
		t.Errorf("Job %s: %s, want %s", j.Name, got, want)
	}
	var pods corev1.PodList
	if err := nd.client.List(context.Background(), &pods, client.InNamespace(jobNamespace), client.MatchingLabels{controllers.LabelJob: name}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodSucceeded {
			t.Errorf("pod %s (index %s) is %s", p.Name, p.Annotations[batchv1.JobCompletionIndexAnnotation], p.Status.Phase)
		}
	}
	t.Logf("stage prune as 2 indices: %s, %d bytes", cpj.Status.Output.Digest, cpj.Status.Output.SizeBytes)
}
