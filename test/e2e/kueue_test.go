//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
)

// Each Kueue test has its own namespace and ClusterQueue (applyQueue), so
// the three run in parallel.
const (
	kueueAdmitNamespace  = "e2e-kueue"
	kueueShardsNamespace = "e2e-kueue-shards"
	kueueSweepNamespace  = "e2e-kueue-sweep"
)

func awaitingAdmission(c *v1alpha1.CompressionJob) bool {
	for _, s := range c.Status.Stages {
		if s.Reason == v1alpha1.ReasonAwaitingAdmission {
			return true
		}
	}
	return false
}

// A job with spec.scheduling.queueName runs only once Kueue admits it:
// while its ClusterQueue has no CPU quota, its stage Job stays suspended
// with no pod, a Workload for it waits for quota and the stage says
// AwaitingAdmission; once the quota is raised, Kueue admits the Workload,
// the Job resumes after that, and the job becomes Ready.
func TestKueueAdmitsTheStageJob(t *testing.T) {
	t.Parallel()
	const ns, name = kueueAdmitNamespace, "queued"
	applyQueue(t, ns, "0")
	rec := record(t, ns, name)
	cpj := quantizeJob(ns, name)
	cpj.Spec.Scheduling.QueueName = localQueue
	apply(t, ns, manifest(t, cpj))
	rec.waitFor(t, time.Minute, "AwaitingAdmission", awaitingAdmission)
	jobs := jobsOf(t, ns, name)
	if len(jobs) != 1 {
		t.Fatalf("%d Jobs, want 1", len(jobs))
	}
	job := jobs[0]
	if q := job.Labels[controllers.LabelQueueName]; q != localQueue {
		t.Errorf("Job %s has queue label %q, want %q", job.Name, q, localQueue)
	}
	if wl := waitPending(t, ns, job.Name); wl.Spec.QueueName != localQueue {
		t.Errorf("%s is in queue %q, want %q", wl, wl.Spec.QueueName, localQueue)
	}
	heldFor(t, ns, name, job.Name, 2*time.Second)

	applyQueue(t, ns, "4")
	rec.waitFor(t, 2*time.Minute, "Ready", ready)
	wl := workloads(t, ns)[job.Name]
	admitted := wl.admittedAt()
	if admitted.IsZero() || wl.admittedPods() != 1 {
		t.Fatalf("after the run: %s; want it admitted, for 1 pod", wl)
	}
	checkRanAfterAdmission(t, ns, name, job.Name, admitted)
}

// checkRanAfterAdmission checks that the Job was created suspended and
// resumed no earlier than Kueue admitted its Workload, and that each of
// its pods was created after that too (times have a resolution of 1 s).
func checkRanAfterAdmission(t *testing.T, ns, name, jobName string, admitted time.Time) {
	t.Helper()
	var job batchv1.Job
	if err := cl.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: jobName}, &job); err != nil {
		t.Fatal(err)
	}
	resumed := resumedAt(&job)
	if resumed.IsZero() {
		t.Errorf("Job %s was never suspended (conditions %v)", jobName, jobConditions(&job))
	} else if resumed.Before(admitted) {
		t.Errorf("Job %s resumed at %s, before Kueue admitted it at %s", jobName, resumed, admitted)
	}
	n := 0
	for _, p := range podsOf(t, ns, name) {
		if p.Labels[batchv1.JobNameLabel] != jobName {
			continue
		}
		n++
		if p.CreationTimestamp.Time.Before(admitted) {
			t.Errorf("pod %s created at %s, before Kueue admitted its Job at %s", p.Name, p.CreationTimestamp, admitted)
		}
	}
	if n == 0 {
		t.Errorf("Job %s has no pods", jobName)
	}
}

// The data-parallel stage with a queue: Kueue admits the Indexed Job as one
// Workload of N pods, all or none. While the ClusterQueue's CPU fits one
// stage pod of the two, the Job stays suspended and no index starts (an
// index alone would only wait for the other); with room for two, both are
// admitted together, and the stage writes the model shards: 1 writes.
func TestKueueAdmitsAllShardsOrNone(t *testing.T) {
	t.Parallel()
	const ns = kueueShardsNamespace
	applyQueue(t, ns, "1")
	one, two := record(t, ns, "one"), record(t, ns, "two")
	pruneOnly := func(name string, shards int32) *v1alpha1.CompressionJob {
		cpj := shardedJob(t, ns, name, shards)
		cpj.Spec.Stages = cpj.Spec.Stages[:1]
		return cpj
	}
	queued := pruneOnly("two", 2)
	queued.Spec.Scheduling.QueueName = localQueue
	apply(t, ns, manifest(t, pruneOnly("one", 1))) // the reference, without Kueue
	apply(t, ns, manifest(t, queued))
	two.waitFor(t, time.Minute, "AwaitingAdmission", awaitingAdmission)
	jobs := jobsOf(t, ns, "two")
	if len(jobs) != 1 || ptr.Deref(jobs[0].Spec.Completions, 0) != 2 {
		t.Fatalf("Jobs %v, want one Indexed Job of 2 completions", jobNames(jobs))
	}
	job := jobs[0].Name
	wl := waitPending(t, ns, job)
	if len(wl.Spec.PodSets) != 1 || wl.Spec.PodSets[0].Count != 2 {
		t.Fatalf("%s has pod sets %+v, want one of 2 pods", wl, wl.Spec.PodSets)
	}
	heldFor(t, ns, "two", job, 3*time.Second)
	want := one.waitFor(t, 3*time.Minute, "Ready", ready).Object

	applyQueue(t, ns, "2")
	got := two.waitFor(t, 3*time.Minute, "Ready", ready).Object
	wl = workloads(t, ns)[job]
	admitted := wl.admittedAt()
	if admitted.IsZero() || wl.admittedPods() != 2 {
		t.Fatalf("after the run: %s; want it admitted, for 2 pods", wl)
	}
	checkRanAfterAdmission(t, ns, "two", job, admitted)
	var j batchv1.Job
	if err := cl.client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: job}, &j); err != nil {
		t.Fatal(err)
	}
	if j.Status.Succeeded != 2 || j.Status.CompletedIndexes != "0,1" {
		t.Errorf("Job %s: succeeded %d, completed indexes %q; want 2, \"0,1\"", job, j.Status.Succeeded, j.Status.CompletedIndexes)
	}
	g, w := got.Status.Stages[0].Output, want.Status.Stages[0].Output
	if g == nil || w == nil || g.Digest != w.Digest {
		t.Fatalf("shards: 2 through Kueue wrote %+v, shards: 1 %+v", g, w)
	}
	t.Logf("TARGET Kueue shards: one Workload of 2 pods admitted at %s; both indices wrote %s, as shards: 1 did", admitted.Format("15:04:05"), g.Digest)
}

func jobNames(jobs []batchv1.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Name)
	}
	return out
}

// A sweep of four variants with maxParallel 4 under a ClusterQueue whose
// CPU fits two stage pods: the controller creates the four variants' Jobs
// at once, every one through Kueue, and Kueue runs at most two at a time
// (from the Jobs' start and completion times); the sweep completes.
func TestKueueBoundsASweep(t *testing.T) {
	t.Parallel()
	const ns, name = kueueSweepNamespace, "sweep"
	applyQueue(t, ns, "2")
	rec := record(t, ns, name)
	cpj := quantizeJob(ns, name)
	cpj.Spec.Scheduling.QueueName = localQueue
	cpj.Spec.Variants = &v1alpha1.VariantsSpec{MaxParallel: 4, Parameters: []v1alpha1.VariantParameter{
		{Stage: "int8", Field: "calibration.samples", Values: []string{"16", "32", "48", "64"}}}}
	apply(t, ns, manifest(t, cpj))
	rec.waitFor(t, 4*time.Minute, "Ready", ready)

	jobs := jobsOf(t, ns, name)
	if len(jobs) != 5 {
		t.Fatalf("Jobs %v, want 5: four variants and the select step", jobNames(jobs))
	}
	wls := workloads(t, ns)
	var existed, ran []span
	for _, j := range jobs {
		if j.Labels[controllers.LabelQueueName] != localQueue {
			t.Errorf("Job %s has no queue label", j.Name)
		}
		if wl := wls[j.Name]; wl == nil || wl.admittedAt().IsZero() {
			t.Errorf("Job %s was not admitted by Kueue: %v", j.Name, wl)
		}
		if j.Status.StartTime == nil || j.Status.CompletionTime == nil {
			t.Fatalf("Job %s: start %v, completion %v", j.Name, j.Status.StartTime, j.Status.CompletionTime)
		}
		existed = append(existed, span{j.Name, j.CreationTimestamp.Time, j.Status.CompletionTime.Time})
		ran = append(ran, span{j.Name, j.Status.StartTime.Time, j.Status.CompletionTime.Time})
	}
	peakRan, peakExisted := peak(ran), peak(existed)
	t.Logf("TARGET Kueue sweep: at most %d of the stage Jobs ran at once, %d existed unfinished at once", peakRan, peakExisted)
	if peakRan > 2 {
		t.Errorf("%d stage Jobs ran at once under a quota for 2: %v", peakRan, ran)
	}
	if peakRan < 2 {
		t.Errorf("at most %d stage Job ran at once: the quota for 2 was not used (%v)", peakRan, ran)
	}
	// maxParallel (4) let the controller create more Jobs than the quota
	// runs: Kueue, not the controller, held them back.
	if peakExisted < 4 {
		t.Errorf("at most %d unfinished stage Jobs existed at once, want the 4 maxParallel allows (%v)", peakExisted, existed)
	}
}

// span is when a Job existed or ran, to the second.
type span struct {
	job        string
	start, end time.Time
}

func (s span) String() string {
	return fmt.Sprintf("%s [%s, %s)", s.job, s.start.Format("15:04:05"), s.end.Format("15:04:05"))
}

// peak is the largest number of spans open at once. A span is [start,
// end): at an instant where one ends and another starts, the end counts
// first (a Job Kueue admits when another finished starts at the second the
// other completed, or later).
func peak(spans []span) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, s := range spans {
		edges = append(edges, edge{s.start, 1}, edge{s.end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta
	})
	open, most := 0, 0
	for _, e := range edges {
		open += e.delta
		most = max(most, open)
	}
	return most
}
