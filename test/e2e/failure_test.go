//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// A runner killed while it uploads its model is retried by the Job; while
// the upload hangs nothing is visible at the artifact's key, and the
// retry's artifact is complete (its digest, size and ONNX Runtime check
// out) with its result.json and release.json beside it.
func TestRunnerKilledMidStage(t *testing.T) {
	t.Parallel()
	const ns, name = "e2e-retry", "killed"
	rec := record(t, ns, name)
	prefix := "out/" + ns + "/" + name + "/"
	hold := cl.proxy.HoldUploads(func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/"+prefix) && strings.HasSuffix(r.URL.Path, "/"+pipeline.ModelFile)
	})
	defer hold.Release(cl.proxy)
	apply(t, ns, manifest(t, quantizeJob(ns, name)))
	select {
	case <-hold.Held():
	case <-time.After(90 * time.Second):
		t.Fatalf("the runner never uploaded its model\n%s", cl.diagnose(ns))
	}
	if keys := keysUnder(t, prefix); len(keys) != 0 {
		t.Fatalf("objects visible while the model upload is in flight: %v", keys)
	}
	started := startsIn(ns)
	if len(started) != 1 {
		t.Fatalf("%d runner processes, want 1", len(started))
	}
	if err := cl.agent.Kill(ns, started[0].Pod, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The killed upload never completed: still nothing at the key.
	time.Sleep(500 * time.Millisecond)
	if keys := keysUnder(t, prefix); len(keys) != 0 {
		t.Fatalf("objects visible after the runner died mid-upload: %v", keys)
	}
	hold.Release(cl.proxy)

	done := rec.waitFor(t, 120*time.Second, "Ready", ready)
	stage := done.Object.Status.Stages[0]
	if stage.Attempts != 2 {
		t.Errorf("stage attempts = %d, want 2 (the killed pod and its retry)", stage.Attempts)
	}
	if n := len(startsIn(ns)); n != 2 {
		t.Errorf("%d runner processes, want 2", n)
	}
	jobs := jobsOf(t, ns, name)
	if len(jobs) != 1 || jobs[0].Status.Failed != 1 || jobs[0].Status.Succeeded != 1 {
		t.Errorf("Jobs %v, want one with 1 failed and 1 succeeded pod", jobSummaries(jobs))
	}
	model := verifyArtifact(t, done.Object.Status.Output)
	data, err := cl.s3.Object(bucket, sampleDatasetKey)
	if err != nil {
		t.Fatal(err)
	}
	if acc := accuracy(t, model, data); acc < 0.97 {
		t.Errorf("the retry's model scores %v", acc)
	}
	key := bucketKey(t, done.Object.Status.Output.URI)
	dir := key[:strings.LastIndex(key, "/")+1]
	want := []string{dir + pipeline.ModelFile, dir + pipeline.ReleaseFile, dir + pipeline.ReportFile, dir + pipeline.ResultFile}
	if diff := cmp.Diff(want, keysUnder(t, prefix)); diff != "" {
		t.Errorf("objects under the output prefix (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]kstatus.Status{kstatus.InProgressStatus, kstatus.CurrentStatus}, rec.kstatuses()); diff != "" {
		t.Errorf("kstatus over the run (-want +got):\n%s", diff)
	}
}

// A source that is not an ONNX model fails the stage at once (the runner's
// bad-input exit code fails the Job through its podFailurePolicy): Stalled,
// a reason and a message naming the URI, one pod, no retry storm.
func TestBadModelStalls(t *testing.T) {
	t.Parallel()
	const ns, name = "e2e-badmodel", "bad"
	if err := cl.s3.Put(bucket, "bad/model.onnx", []byte("this is not a protobuf, let alone a model")); err != nil {
		t.Fatal(err)
	}
	rec := record(t, ns, name)
	cpj := quantizeJob(ns, name)
	cpj.Spec.Source.URI = s3URI("bad/model.onnx")
	apply(t, ns, manifest(t, cpj))
	failed := rec.waitFor(t, 60*time.Second, "Stalled", stalled)
	saveFixture(t, "bad-model", failed)
	st := meta.FindStatusCondition(failed.Object.Status.Conditions, v1alpha1.ConditionStalled)
	if st.Reason != "BadInput" || !strings.Contains(st.Message, "s3://"+bucket+"/bad/model.onnx") {
		t.Errorf("Stalled = %s: %q, want BadInput naming the model's URI", st.Reason, st.Message)
	}
	if failed.Kstatus != kstatus.FailedStatus {
		t.Errorf("kstatus %s, want Failed", failed.Kstatus)
	}
	// Give a retry storm time to show.
	time.Sleep(5 * time.Second)
	jobs := jobsOf(t, ns, name)
	if len(jobs) != 1 || jobs[0].Status.Failed != 1 || !hasJobCondition(&jobs[0], batchv1.JobFailed, batchv1.JobReasonPodFailurePolicy) {
		t.Errorf("Jobs %v, want one failed by its podFailurePolicy after one pod", jobSummaries(jobs))
	}
	if pods := podsOf(t, ns, name); len(pods) != 1 {
		t.Errorf("%d pods, want 1", len(pods))
	}
	if n := len(startsIn(ns)); n != 1 {
		t.Errorf("%d runner processes, want 1", n)
	}
	var last observation
	if all := rec.all(); len(all) > 0 {
		last = all[len(all)-1]
	}
	if !stalled(last.Object) {
		t.Errorf("the run left Stalled: %s", conditionSummary(last.Object))
	}
}

func keysUnder(t *testing.T, prefix string) []string {
	t.Helper()
	keys, err := cl.s3.Keys(bucket)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func hasJobCondition(j *batchv1.Job, typ batchv1.JobConditionType, reason string) bool {
	for _, c := range j.Status.Conditions {
		if c.Type == typ && c.Status == "True" && c.Reason == reason {
			return true
		}
	}
	return false
}

func jobSummaries(jobs []batchv1.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("%s failed=%d succeeded=%d %v", j.Name, j.Status.Failed, j.Status.Succeeded, jobConditions(&j)))
	}
	return out
}
