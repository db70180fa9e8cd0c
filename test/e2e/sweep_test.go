//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
)

const sweepNamespace = "e2e-sweep"

// interval is when a stage's runner worked: from its process start (the
// node agent's clock) for the duration its result reports, which lies
// within the process's life.
type interval struct {
	run        string
	start, end time.Time
}

// runIntervals maps each run of the sweep that ran a pod to its interval.
func runIntervals(t *testing.T, ns string, cpj *v1alpha1.CompressionJob) map[string]interval {
	t.Helper()
	jobToRun := map[string]v1alpha1.StageStatus{}
	for _, s := range cpj.Status.Stages {
		if s.JobName != "" {
			jobToRun[s.JobName] = s
		}
	}
	pods := map[string]corev1.Pod{}
	for _, p := range podsOf(t, ns, cpj.Name) {
		pods[p.Name] = p
	}
	out := map[string]interval{}
	for _, s := range startsIn(ns) {
		pod, ok := pods[s.Pod]
		if !ok {
			continue
		}
		run, ok := jobToRun[pod.Labels["batch.kubernetes.io/job-name"]]
		if !ok || run.Output == nil {
			continue
		}
		// The runner's duration is in the result it reports (the
		// termination message); result.json in storage is the work's and
		// has none.
		var res pipeline.Result
		for _, cs := range pod.Status.ContainerStatuses {
			if term := cs.State.Terminated; term != nil && term.Message != "" {
				if err := json.Unmarshal([]byte(term.Message), &res); err != nil {
					t.Fatalf("termination message of %s: %v", pod.Name, err)
				}
			}
		}
		d, err := strconv.ParseFloat(res.DurationSeconds, 64)
		if err != nil {
			t.Fatalf("runner of %s (pod %s) reported no duration: %q", run.Name, pod.Name, res.DurationSeconds)
		}
		out[run.Name] = interval{run.Name, s.At, s.At.Add(time.Duration(d * float64(time.Second)))}
	}
	return out
}

// The target, from config/samples: a three-variant sweep on the
// bundled MNIST model (hessian 0.3/0.6/0.9 with sparse storage, then
// static int8, gated at maxAccuracyDrop 0.01). Three variants reported,
// the smallest passing one (0.6) selected, the 0.9 one marked failed with
// its model kept; the three prune stages ran as concurrent Jobs (their
// runners' working intervals overlap); the select step's release.json and
// report.html are in the bucket.
func TestSweepSample(t *testing.T) {
	const ns, name = sweepNamespace, "mnist-sweep"
	rec := record(t, ns, name)
	raw, err := os.ReadFile(filepath.Join(cl.repo, "config", "samples", "kompress_v1alpha1_compressionjob_sweep.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	apply(t, ns, renderManifest(t, raw))
	done := rec.waitFor(t, 4*time.Minute, "Ready", ready)
	t.Logf("TARGET sweep apply -> Ready: %s", done.At.Sub(start).Round(10*time.Millisecond))
	cpj := done.Object
	if got := rec.kstatuses(); got[len(got)-1] != kstatus.CurrentStatus {
		t.Errorf("kstatus over the run: %v", got)
	}

	type variant struct {
		Name, Sparsity string
		Phase          v1alpha1.VariantPhase
		Passed         bool
		Reason         string
	}
	var got []variant
	for _, v := range cpj.Status.Variants {
		if v.Output == nil || v.Passed == nil {
			t.Fatalf("variant %s has no model or no verdict: %+v", v.Name, v)
		}
		verifyArtifact(t, v.Output)
		got = append(got, variant{v.Name, v.Parameters["prune.sparsity"], v.Phase, *v.Passed, v.Reason})
		t.Logf("variant %s sparsity %s: %s, %d bytes, %s nonzero, accuracy %s (drop %s)", v.Name, v.Parameters["prune.sparsity"], v.Phase,
			v.Output.SizeBytes, v.Output.Metrics[pipeline.MetricNonzeroParams], v.Output.Metrics[pipeline.MetricAccuracy], v.Output.Metrics[pipeline.MetricAccuracyDrop])
	}
	want := []variant{
		{"v1", "0.3", v1alpha1.VariantSucceeded, true, ""},
		{"v2", "0.6", v1alpha1.VariantSucceeded, true, ""},
		{"v3", "0.9", v1alpha1.VariantFailed, false, v1alpha1.ReasonQualityGateFailed},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variants (-want +got):\n%s", diff)
	}
	sel := cpj.Status.Selection
	if sel == nil || sel.Variant != "v2" || sel.Passed == nil || !*sel.Passed {
		t.Fatalf("status.selection %+v, want v2", sel)
	}
	if diff := cmp.Diff(cpj.Status.Variants[1].Output, cpj.Status.Output); diff != "" {
		t.Errorf("status.output is not v2's (-v2 +output):\n%s", diff)
	}
	if c := meta.FindStatusCondition(cpj.Status.Conditions, v1alpha1.ConditionReady); !strings.HasPrefix(c.Message, "selected v2 (prune.sparsity=0.6)") {
		t.Errorf("Ready: %q", c.Message)
	}

	// The sweep's release.json records the selection and the alternatives;
	// report.html plots them.
	b, err := cl.s3.Object(bucket, bucketKey(t, sel.Release))
	if err != nil {
		t.Fatal(err)
	}
	var rel runner.Release
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rel); err != nil {
		t.Fatalf("release.json: %v\n%s", err, b)
	}
	if rel.Model.Digest != cpj.Status.Output.Digest || rel.Selection == nil || rel.Selection.Selected != "v2" || len(rel.Selection.Variants) != 3 ||
		rel.Report != sel.Report || len(rel.Stages) != 2 || rel.Source.Digest == "" {
		t.Errorf("release.json: %s", b)
	}
	page, err := cl.s3.Object(bucket, bucketKey(t, sel.Report))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`<svg id="tradeoff-bytes"`, `class="point passed selected" data-variant="v2"`, `data-variant="v3"`, `class="gate"`} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("report.html has no %s", s)
		}
	}
	// Each variant's final model has its own release.json and report.html.
	verifyRelease(t, cpj)
	if _, err := cl.s3.Object(bucket, bucketKey(t, pipeline.SiblingURI(cpj.Status.Output.URI, pipeline.ReportFile))); err != nil {
		t.Errorf("no report.html beside the selected model: %v", err)
	}

	// Seven Jobs, one runner each: three prune, three int8, the select step.
	if n := len(jobsOf(t, ns, name)); n != 7 {
		t.Errorf("%d Jobs, want 7", n)
	}
	if n := len(startsIn(ns)); n != 7 {
		t.Errorf("%d runner processes, want 7", n)
	}
	// The three prune stages ran at once.
	iv := runIntervals(t, ns, cpj)
	var prunes []interval
	for _, r := range []string{"prune/v1", "prune/v2", "prune/v3"} {
		i, ok := iv[r]
		if !ok {
			t.Fatalf("no runner interval for %s: %v", r, iv)
		}
		prunes = append(prunes, i)
	}
	sort.Slice(prunes, func(a, b int) bool { return prunes[a].start.Before(prunes[b].start) })
	lastStart, firstEnd := prunes[2].start, prunes[0].end
	for _, p := range prunes {
		if p.end.Before(firstEnd) {
			firstEnd = p.end
		}
		t.Logf("%s: started +%s, worked %s", p.run, p.start.Sub(prunes[0].start).Round(time.Millisecond), p.end.Sub(p.start).Round(time.Millisecond))
	}
	t.Logf("TARGET sweep: the three prune runners overlapped for %s (the last started %s after the first)",
		firstEnd.Sub(lastStart).Round(time.Millisecond), lastStart.Sub(prunes[0].start).Round(time.Millisecond))
	if !lastStart.Before(firstEnd) {
		t.Errorf("the prune stages did not run concurrently: the last started at +%s, the first finished at +%s",
			lastStart.Sub(prunes[0].start), firstEnd.Sub(prunes[0].start))
	}
	if sel, ok := iv[pipeline.SelectStep]; !ok || !sel.start.After(latestEnd(iv)) {
		t.Errorf("the select step did not start after every variant finished: %v", iv)
	}
}

func latestEnd(iv map[string]interval) time.Time {
	var t time.Time
	for _, i := range iv {
		if i.run != pipeline.SelectStep && i.end.After(t) {
			t = i.end
		}
	}
	return t
}

// Stages the variants share run once: a sweep over the quantization's
// calibration runs the prune stage in one Job, which both variants'
// chains name.
func TestSweepSharedPrefix(t *testing.T) {
	const ns, name = sweepNamespace, "calibration"
	rec := record(t, ns, name)
	cpj := twoStageJob(t, ns, name)
	cpj.Spec.Variants = &v1alpha1.VariantsSpec{Parameters: []v1alpha1.VariantParameter{
		{Stage: "int8", Field: "calibration.method", Values: []string{"minmax", "entropy"}}}, MaxParallel: 2}
	apply(t, ns, manifest(t, cpj))
	got := rec.waitFor(t, 2*time.Minute, "Ready", ready).Object
	var stages []string
	for _, s := range got.Status.Stages {
		stages = append(stages, s.Name+" "+string(s.State))
	}
	if diff := cmp.Diff([]string{"prune/v1 Succeeded", "int8/v1 Succeeded", "int8/v2 Succeeded", "select Succeeded"}, stages); diff != "" {
		t.Errorf("status.stages (-want +got):\n%s", diff)
	}
	for _, v := range got.Status.Variants {
		if v.Stages[0] != "prune/v1" {
			t.Errorf("variant %s runs %v, not the shared prune/v1", v.Name, v.Stages)
		}
	}
	byStage := map[string]int{}
	for _, p := range podsOf(t, ns, name) {
		byStage[p.Labels[controllers.LabelStage]]++
	}
	if diff := cmp.Diff(map[string]int{"prune": 1, "int8": 2, "select": 1}, byStage); diff != "" {
		t.Errorf("pods by stage (-want +got):\n%s", diff)
	}
}
