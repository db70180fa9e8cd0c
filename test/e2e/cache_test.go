//go:build e2e

package e2e

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/types"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

// twoStageJob prunes then quantizes on the general pool, its model and
// dataset pinned by digest as a GitOps repository pins them.
func twoStageJob(t *testing.T, ns, name string) *v1alpha1.CompressionJob {
	cpj := quantizeJob(ns, name)
	cpj.Spec.Source.SHA256 = fileSHA256(t, "config/samples/models/mnist-8.onnx")
	cpj.Spec.Dataset.SHA256 = fileSHA256(t, "config/samples/data/mnist-test-1k.npz")
	prune := v1alpha1.Stage{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune,
		Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}}
	cpj.Spec.Stages = append([]v1alpha1.Stage{prune}, cpj.Spec.Stages...)
	return cpj
}

// Applying an unchanged job again changes nothing (no new Job, no runner);
// changing only the last stage runs only the last stage: the first is
// Cached by its content-addressed key. (A job that does not pin its files
// runs every stage's pod again on a new run: see the controllers' envtest
// TestSpecChangeRerunsUnpinnedStages.)
func TestReapplyAndChangeLastStage(t *testing.T) {
	const ns, name = "e2e-cache", "reuse"
	rec := record(t, ns, name)
	cpj := twoStageJob(t, ns, name)
	apply(t, ns, manifest(t, cpj))
	first := rec.waitFor(t, 60*time.Second, "Ready", ready).Object
	jobs1 := jobUIDs(t, ns, name)
	if len(jobs1) != 2 || len(startsIn(ns)) != 2 {
		t.Fatalf("first run: %d Jobs, %d runner processes; want 2 and 2", len(jobs1), len(startsIn(ns)))
	}

	// The same manifest again: kubectl reports it unchanged.
	apply(t, ns, manifest(t, cpj))
	time.Sleep(3 * time.Second) // time for a wrong reaction to show
	if diff := cmp.Diff(jobs1, jobUIDs(t, ns, name)); diff != "" {
		t.Errorf("re-applying an unchanged job changed its Jobs (-before +after):\n%s", diff)
	}
	if n := len(startsIn(ns)); n != 2 {
		t.Errorf("re-applying an unchanged job started %d more runners", n-2)
	}
	if last := rec.all()[len(rec.all())-1].Object; last.Generation != 1 || !ready(last) {
		t.Errorf("after re-applying: generation %d, %s", last.Generation, conditionSummary(last))
	}

	// Only the last stage changes.
	cpj.Spec.Stages[1].Quantize.Calibration.Samples = 32
	apply(t, ns, manifest(t, cpj))
	changed := rec.waitFor(t, 10*time.Second, "generation 2", func(c *v1alpha1.CompressionJob) bool { return c.Generation == 2 })
	saveFixture(t, "spec-changed", changed)
	if changed.Kstatus != kstatus.InProgressStatus {
		t.Errorf("kstatus of a spec the controller has not seen = %s, want InProgress", changed.Kstatus)
	}
	second := rec.waitFor(t, 60*time.Second, "Ready at generation 2", func(c *v1alpha1.CompressionJob) bool { return c.Generation == 2 && ready(c) }).Object
	s0, s1 := second.Status.Stages[0], second.Status.Stages[1]
	if s0.State != v1alpha1.StageCached || s0.CacheKey != first.Status.Stages[0].CacheKey || s0.Output.Digest != first.Status.Stages[0].Output.Digest {
		t.Errorf("stage prune = %s key %.8s digest %s; want Cached with the first run's key and output", s0.State, s0.CacheKey, s0.Output.Digest)
	}
	if s1.State != v1alpha1.StageSucceeded || s1.CacheKey == first.Status.Stages[1].CacheKey {
		t.Errorf("stage int8 = %s key %.8s; want Succeeded under a new key", s1.State, s1.CacheKey)
	}
	starts := startsIn(ns)
	if len(starts) != 3 {
		t.Fatalf("%d runner processes after the change, want 3 (only the last stage ran again)", len(starts))
	}
	for _, p := range podsOf(t, ns, name) {
		if p.Name == starts[2].Pod && p.Labels[controllers.LabelStage] != "int8" {
			t.Errorf("the new runner ran stage %s, want int8", p.Labels[controllers.LabelStage])
		}
	}
	jobs2 := jobUIDs(t, ns, name)
	if _, kept := jobs2[first.Status.Stages[0].JobName]; !kept || jobs2[first.Status.Stages[0].JobName] != jobs1[first.Status.Stages[0].JobName] {
		t.Errorf("the prune Job was replaced: before %v, after %v", jobs1, jobs2)
	}
	verifyArtifact(t, second.Status.Output)
	verifyRelease(t, second)
	if diff := cmp.Diff([]kstatus.Status{kstatus.InProgressStatus, kstatus.CurrentStatus, kstatus.InProgressStatus, kstatus.CurrentStatus}, rec.kstatuses()); diff != "" {
		t.Errorf("kstatus over both runs (-want +got):\n%s", diff)
	}
}

// jobUIDs maps the CompressionJob's stage Jobs to their UIDs.
func jobUIDs(t *testing.T, ns, name string) map[string]types.UID {
	t.Helper()
	out := map[string]types.UID{}
	for _, j := range jobsOf(t, ns, name) {
		if j.DeletionTimestamp == nil {
			out[j.Name] = j.UID
		}
	}
	return out
}
