package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// sweepJob is the sweep on the bundled MNIST model: hessian pruning
// at 0.3, 0.6 and 0.9 with sparse storage, then static int8, gated at one
// point of accuracy.
func sweepJob(t *testing.T, variants string) (jobFile, dir string) {
	t.Helper()
	jobFile, dir = sampleJob(t, "")
	job := strings.Replace(readFile(t, jobFile), "  stages:\n", `  acceptance: {maxAccuracyDrop: "0.01"}
  stages:
  - name: prune
    type: Prune
    prune: {method: hessian, sparsity: "0.3", storage: sparse}
`, 1) + variants
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile, dir
}

const threeSparsities = `  variants:
    parameters:
    - {stage: prune, field: sparsity, values: ["0.3", "0.6", "0.9"]}
    select: smallest
    maxParallel: 3
`

// The target: three variants reported, the smallest passing one
// (0.6: the int8 files are the same size, and it keeps fewer nonzero
// weights than 0.3) selected, the 0.9 one marked failed with its model
// kept; the sweep's release.json and report.html in storage and the
// report written locally. Run again, every stage and the select step are
// cache hits with the same selection.
func TestRunSweep(t *testing.T) {
	orttest.Require(t)
	jobFile, dir := sweepJob(t, threeSparsities)
	report := filepath.Join(dir, "report.html")
	out, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json", "--report", report)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, s := range []string{"3 variants, 3 at a time", "[1/2 prune/v3] transform", "[2/2 int8/v2] transform", "[3/3 select]"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr has no %q", s)
		}
	}
	job := decodeJob(t, out)
	st := job.Status
	type variant struct {
		Name, Sparsity string
		Phase          v1alpha1.VariantPhase
		Passed         bool
		Reason         string
		Stages         []string
	}
	var got []variant
	for _, v := range st.Variants {
		if v.Output == nil || v.Passed == nil {
			t.Fatalf("variant %s has no model or no verdict: %+v", v.Name, v)
		}
		got = append(got, variant{v.Name, v.Parameters["prune.sparsity"], v.Phase, *v.Passed, v.Reason, v.Stages})
	}
	want := []variant{
		{"v1", "0.3", v1alpha1.VariantSucceeded, true, "", []string{"prune/v1", "int8/v1"}},
		{"v2", "0.6", v1alpha1.VariantSucceeded, true, "", []string{"prune/v2", "int8/v2"}},
		{"v3", "0.9", v1alpha1.VariantFailed, false, v1alpha1.ReasonQualityGateFailed, []string{"prune/v3", "int8/v3"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variants (-want +got):\n%s", diff)
	}
	if !meta.IsStatusConditionTrue(st.Conditions, v1alpha1.ConditionReady) || st.Progress != "7/7" || st.Selection == nil || st.Selection.Variant != "v2" {
		t.Fatalf("status: %+v", st)
	}
	if diff := cmp.Diff(st.Variants[1].Output, st.Output); diff != "" {
		t.Errorf("status.output is not v2's (-v2 +output):\n%s", diff)
	}
	var names []string
	for _, s := range st.Stages {
		names = append(names, s.Name+" "+string(s.State))
	}
	if diff := cmp.Diff([]string{"prune/v1 Succeeded", "prune/v2 Succeeded", "prune/v3 Succeeded", "int8/v1 Succeeded", "int8/v2 Succeeded", "int8/v3 Succeeded", "select Succeeded"}, names); diff != "" {
		t.Errorf("status.stages (-want +got):\n%s", diff)
	}

	data, _, err := storage.ReadAll(context.Background(), st.Selection.Release, "")
	if err != nil {
		t.Fatal(err)
	}
	var rel runner.Release
	if err := json.Unmarshal(data, &rel); err != nil {
		t.Fatal(err)
	}
	if rel.Model.Digest != st.Output.Digest || rel.Selection.Selected != "v2" || len(rel.Selection.Variants) != 3 || rel.Report != st.Selection.Report ||
		len(rel.Stages) != 2 || rel.Stages[0].Stage.Prune.Sparsity != "0.6" {
		t.Errorf("release.json: %s", data)
	}
	stored, _, err := storage.ReadAll(context.Background(), st.Selection.Report, "")
	if err != nil {
		t.Fatal(err)
	}
	local := readFile(t, report)
	if local != string(stored) {
		t.Error("--report wrote something else than the sweep's report.html")
	}
	for _, s := range []string{`class="point passed selected" data-variant="v2"`, `data-variant="v1"`, `data-variant="v3"`, `class="gate"`, `<svg id="layers"`} {
		if !strings.Contains(local, s) {
			t.Errorf("report.html has no %s", s)
		}
	}

	// The table: one row per variant, the selected one marked.
	table, _, code := cli(t, "run", "-f", jobFile)
	if code != 0 {
		t.Fatalf("second run: exit %d", code)
	}
	rows := map[string]string{}
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) > 2 && f[0] == "*" {
			f = f[1:]
		}
		if len(f) > 2 {
			rows[f[0]] = l
		}
	}
	if !strings.HasPrefix(rows["v2"], "*  v2       0.6") || strings.HasPrefix(rows["v1"], "*") || !strings.Contains(rows["v3"], "0.9             Failed     missed") {
		t.Errorf("table rows %q\n%s", rows, table)
	}
	if !strings.Contains(table, "0 ran, 6 cached, 0 failed") || !strings.Contains(table, "* selected v2 by smallest") {
		t.Errorf("the second run did not reuse every stage:\n%s", table)
	}
}

// Bad input in spec.variants is refused before anything runs, with the
// words the controller stalls a cluster job with (both come from
// jobfile.ExpandVariants; the API server says the same for what CEL
// checks, see api/v1alpha1).
func TestRunSweepRefusesBadVariants(t *testing.T) {
	for _, params := range []string{
		`{stage: prune, field: sparsity, values: ["0.3", "1.5"]}`,
		`{stage: int8, field: bits, values: ["4"]}`,
		`{stage: prunee, field: sparsity, values: ["0.3"]}`,
		`{stage: int8, field: sparsity, values: ["0.3"]}`,
	} {
		jobFile, dir := sweepJob(t, "  variants:\n    parameters:\n    - "+params+"\n")
		_, stderr, code := cli(t, "run", "-f", jobFile)
		if code != pipeline.ExitUsage {
			t.Errorf("%s: exit %d, want %d", params, code, pipeline.ExitUsage)
		}
		_, want := jobfile.ReadFile(jobFile)
		if want == nil || !strings.Contains(stderr, want.Error()) {
			t.Errorf("%s: kompress run said\n%s\nwant %v", params, stderr, want)
		}
		if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
			t.Errorf("%s: something ran: %v", params, err)
		}
	}
}
