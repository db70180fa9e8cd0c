package pipeline

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
)

// sweepOf builds the variants of a sweep over the test spec's stages by
// hand (jobfile.ExpandVariants does it with the CRD's schema): set(v, spec)
// applies variant v's values.
func sweepOf(t *testing.T, vs *v1alpha1.VariantsSpec, set func(Variant, *v1alpha1.CompressionJobSpec)) (*v1alpha1.CompressionJobSpec, *Sweep) {
	t.Helper()
	spec := testSpec()
	spec.Variants = vs
	variants := Variants(vs)
	for i := range variants {
		s := spec.DeepCopy()
		s.Variants = nil
		set(variants[i], s)
		variants[i].Spec = s
	}
	sw, err := PlanSweep(vs, variants)
	if err != nil {
		t.Fatal(err)
	}
	return spec, sw
}

func sparsities(vals ...string) *v1alpha1.VariantsSpec {
	return &v1alpha1.VariantsSpec{Select: v1alpha1.SelectSmallest, MaxParallel: 4, Parameters: []v1alpha1.VariantParameter{
		{Stage: "prune", Field: "sparsity", Values: vals}}}
}

func setSparsity(v Variant, s *v1alpha1.CompressionJobSpec) { s.Stages[0].Prune.Sparsity = v.Values[0] }

func TestVariantsCrossProduct(t *testing.T) {
	vs := &v1alpha1.VariantsSpec{Parameters: []v1alpha1.VariantParameter{
		{Stage: "prune", Field: "sparsity", Values: []string{"0.3", "0.6"}},
		{Stage: "int8", Field: "bits", Values: []string{"8", "4"}},
		{Stage: "int8", Field: "method", Values: []string{"weightOnly"}},
	}}
	var got []string
	for _, v := range Variants(vs) {
		got = append(got, v.Name+" "+v.Describe(vs.Parameters))
	}
	want := []string{
		"v1 prune.sparsity=0.3, int8.bits=8, int8.method=weightOnly", "v2 prune.sparsity=0.3, int8.bits=4, int8.method=weightOnly",
		"v3 prune.sparsity=0.6, int8.bits=8, int8.method=weightOnly", "v4 prune.sparsity=0.6, int8.bits=4, int8.method=weightOnly",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("variants (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"prune.sparsity": "0.6", "int8.bits": "4", "int8.method": "weightOnly"}, Variants(vs)[3].Parameters(vs.Parameters)); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
}

// Variants whose chains agree up to a stage share its run: a sweep over
// the last stage runs the first once.
func TestPlanSweepSharesPrefixes(t *testing.T) {
	type run struct {
		Name     string
		Parent   int
		Variants []int
	}
	plan := func(sw *Sweep) (runs []run, chains [][]int) {
		for _, r := range sw.Runs {
			runs = append(runs, run{r.Name, r.Parent, r.Variants})
		}
		return runs, sw.Chains
	}
	_, bits := sweepOf(t, &v1alpha1.VariantsSpec{Parameters: []v1alpha1.VariantParameter{{Stage: "int8", Field: "bits", Values: []string{"8", "4"}}}},
		func(v Variant, s *v1alpha1.CompressionJobSpec) { fmt.Sscan(v.Values[0], &s.Stages[1].Quantize.Bits) })
	runs, chains := plan(bits)
	if diff := cmp.Diff([]run{{"prune/v1", -1, []int{0, 1}}, {"int8/v1", 0, []int{0}}, {"int8/v2", 0, []int{1}}}, runs); diff != "" {
		t.Errorf("runs of a sweep over the last stage (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]int{{0, 1}, {0, 2}}, chains); diff != "" {
		t.Errorf("chains (-want +got):\n%s", diff)
	}
	_, first := sweepOf(t, sparsities("0.3", "0.6", "0.9"), setSparsity)
	runs, _ = plan(first)
	want := []run{{"prune/v1", -1, []int{0}}, {"prune/v2", -1, []int{1}}, {"prune/v3", -1, []int{2}},
		{"int8/v1", 0, []int{0}}, {"int8/v2", 1, []int{1}}, {"int8/v3", 2, []int{2}}}
	if diff := cmp.Diff(want, runs); diff != "" {
		t.Errorf("runs of a sweep over the first stage (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"prune/v2", "int8/v2"}, first.VariantStages(1)); diff != "" {
		t.Errorf("stages of v2 (-want +got):\n%s", diff)
	}
}

func art(bytes int64, kv ...string) *v1alpha1.Artifact {
	m := map[string]string{MetricBytes: fmt.Sprint(bytes)}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &v1alpha1.Artifact{URI: fmt.Sprintf("s3://o/%d/model.onnx", bytes), Digest: "sha256:" + strings.Repeat("c", 64), SizeBytes: bytes, Metrics: m}
}

func TestSelect(t *testing.T) {
	gate := &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}
	cases := []struct {
		name    string
		policy  v1alpha1.SelectPolicy
		outputs []*v1alpha1.Artifact
		want    int
		passed  bool
	}{
		{"smallest passing", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{
			art(300, "accuracyDrop", "0"), art(200, "accuracyDrop", "0.005"), art(100, "accuracyDrop", "0.6")}, 1, true},
		{"equal bytes: fewer nonzeros", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{
			art(100, "accuracyDrop", "0", "nonzeroParams", "4204"), art(100, "accuracyDrop", "0.007", "nonzeroParams", "2410"),
			art(100, "accuracyDrop", "0.63", "nonzeroParams", "627")}, 1, true},
		{"equal size and nonzeros: better accuracy", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{
			art(100, "accuracyDrop", "0", "accuracy", "0.95"), art(100, "accuracyDrop", "0", "accuracy", "0.97")}, 1, true},
		{"a failed variant is skipped", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{nil, art(200, "accuracyDrop", "0")}, 1, true},
		{"fastest", v1alpha1.SelectFastest, []*v1alpha1.Artifact{
			art(100, "accuracyDrop", "0", "latencyP95Ms", "0.2"), art(300, "accuracyDrop", "0", "latencyP95Ms", "0.1"), art(50, "accuracyDrop", "0")}, 1, true},
		{"most accurate", v1alpha1.SelectMostAccurate, []*v1alpha1.Artifact{
			art(100, "accuracyDrop", "0.002", "accuracy", "0.98"), art(300, "accuracyDrop", "0", "accuracy", "0.985")}, 1, true},
		{"most accurate without labels: top-1 agreement", v1alpha1.SelectMostAccurate, []*v1alpha1.Artifact{
			art(100, "top1Agreement", "0.99", "cosine", "0.999"), art(300, "top1Agreement", "0.995", "cosine", "0.99")}, 1, false},
		{"none passes: the best of all", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{
			art(300, "accuracyDrop", "0.2"), art(200, "accuracyDrop", "0.3")}, 1, false},
		{"no model", v1alpha1.SelectSmallest, []*v1alpha1.Artifact{nil, nil}, -1, false},
		{"ties go to the earlier variant", v1alpha1.SelectFastest, []*v1alpha1.Artifact{
			art(100, "accuracyDrop", "0", "latencyP95Ms", "0.1"), art(100, "accuracyDrop", "0", "latencyP95Ms", "0.1")}, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			names := make([]string, len(tc.outputs))
			for i := range names {
				names[i] = fmt.Sprintf("v%d", i+1)
			}
			got, passed := Select(tc.policy, Candidates(gate, names, tc.outputs))
			if got != tc.want || passed != tc.passed {
				t.Errorf("Select = %d (passed %t), want %d (passed %t)", got, passed, tc.want, tc.passed)
			}
		})
	}
}

func TestSummarizeSweep(t *testing.T) {
	spec, sw := sweepOf(t, sparsities("0.3", "0.6", "0.9"), setSparsity)
	spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0.01"}
	outs := []*v1alpha1.Artifact{
		art(300, "accuracyDrop", "0", "nonzeroParams", "4204"), art(200, "accuracyDrop", "0.007", "nonzeroParams", "2410"),
		art(100, "accuracyDrop", "0.63", "nonzeroParams", "627")}
	ok := func(name string, o *v1alpha1.Artifact) v1alpha1.StageStatus {
		return v1alpha1.StageStatus{Name: name, State: v1alpha1.StageSucceeded, Output: o}
	}
	pending := func(name, reason, msg string) v1alpha1.StageStatus {
		return v1alpha1.StageStatus{Name: name, State: v1alpha1.StagePending, Reason: reason, Message: msg}
	}
	running := v1alpha1.StageStatus{Name: "prune/v1", State: v1alpha1.StageRunning, Reason: "Running", Message: "pod a is running on node n"}
	mid := art(50)
	done := []v1alpha1.StageStatus{ok("prune/v1", mid), ok("prune/v2", mid), ok("prune/v3", mid), ok("int8/v1", outs[0]), ok("int8/v2", outs[1]), ok("int8/v3", outs[2])}
	selected := &v1alpha1.StageStatus{Name: SelectStep, State: v1alpha1.StageSucceeded, Output: outs[1]}

	t.Run("an unschedulable run speaks before a running one", func(t *testing.T) {
		runs := []v1alpha1.StageStatus{running, pending("prune/v2", "Unschedulable", "0/1 nodes are available"), pending("prune/v3", "Pending", ""),
			pending("int8/v1", "", ""), pending("int8/v2", "", ""), pending("int8/v3", "", "")}
		sum := SummarizeSweep("ns/j", spec, sw, runs, nil, "v1")
		want := Summary{Phase: PhaseInProgress, Reason: "Unschedulable", Message: "0 of 3 variants done; 0/1 nodes are available", CurrentStage: "prune/v2", Total: 7}
		if diff := cmp.Diff(want, sum.Summary); diff != "" {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
		if sum.Variants[0].Phase != v1alpha1.VariantRunning || sum.Variants[1].Phase != v1alpha1.VariantPending || sum.Select != nil {
			t.Errorf("variants %v, select %v", sum.Variants, sum.Select)
		}
	})
	t.Run("variants done: the select step is due", func(t *testing.T) {
		sum := SummarizeSweep("ns/j", spec, sw, done, nil, "v1")
		if sum.Phase != PhaseInProgress || sum.CurrentStage != SelectStep || sum.Select == nil || sum.Done != 6 || sum.Output != nil {
			t.Fatalf("summary %+v", sum.Summary)
		}
		got := []v1alpha1.VariantStatus{}
		for _, v := range sum.Variants {
			v.Output, v.Parameters, v.Stages = nil, nil, nil
			got = append(got, v)
		}
		want := []v1alpha1.VariantStatus{
			{Name: "v1", Phase: v1alpha1.VariantSucceeded, Passed: ptr.To(true)},
			{Name: "v2", Phase: v1alpha1.VariantSucceeded, Passed: ptr.To(true)},
			{Name: "v3", Phase: v1alpha1.VariantFailed, Passed: ptr.To(false), Reason: "QualityGateFailed",
				Message: "missed quality gates: maxAccuracyDrop: accuracyDrop 0.63 is above 0.01"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("variants (-want +got):\n%s", diff)
		}
		if n := len(sum.Select.Select.Variants); n != 3 || sum.Select.Select.Variants[2].Output.URI != outs[2].URI {
			t.Errorf("select task variants %+v", sum.Select.Select.Variants)
		}
	})
	t.Run("selected", func(t *testing.T) {
		sum := SummarizeSweep("ns/j", spec, sw, done, selected, "v1")
		if sum.Phase != PhaseSucceeded || sum.Reason != "Succeeded" || sum.Done != 7 || sum.Output.URI != outs[1].URI {
			t.Fatalf("summary %+v", sum.Summary)
		}
		if want := "selected v2 (prune.sparsity=0.6), the smallest of the 2 of 3 variants that passed: s3://o/200/model.onnx"; !strings.HasPrefix(sum.Message, want) {
			t.Errorf("message %q, want it to start with %q", sum.Message, want)
		}
		want := &v1alpha1.SelectionStatus{Policy: v1alpha1.SelectSmallest, Variant: "v2", Passed: ptr.To(true),
			Release: sum.Select.OutputURI, Report: sum.Select.ReportURI()}
		if diff := cmp.Diff(want, sum.Selection); diff != "" {
			t.Errorf("selection (-want +got):\n%s", diff)
		}
		if !strings.HasSuffix(want.Release, "/"+sum.Select.CacheKey+"/release.json") || !strings.HasSuffix(want.Report, "/report.html") {
			t.Errorf("release %s, report %s", want.Release, want.Report)
		}
	})
	t.Run("the select step chose another", func(t *testing.T) {
		other := selected.DeepCopy()
		other.Output = outs[0]
		if sum := SummarizeSweep("ns/j", spec, sw, done, other, "v1"); sum.Phase != PhaseFailed || sum.Reason != v1alpha1.ReasonInvalidResult {
			t.Errorf("summary %+v", sum.Summary)
		}
	})
	t.Run("none passes: the best is kept", func(t *testing.T) {
		strict := spec.DeepCopy()
		strict.Acceptance.MaxAccuracyDrop, strict.Acceptance.MaxBytes = "0.001", ptr.To[int64](250)
		best := selected.DeepCopy()
		best.Output = outs[2]
		sum := SummarizeSweep("ns/j", strict, sw, done, best, "v1")
		if sum.Phase != PhaseFailed || sum.Reason != v1alpha1.ReasonQualityGateFailed || sum.Output == nil || sum.Output.URI != outs[2].URI ||
			*sum.Selection.Passed || sum.Selection.Variant != "v3" {
			t.Fatalf("summary %+v, selection %+v", sum.Summary, sum.Selection)
		}
		if !strings.Contains(sum.Message, "v2: maxAccuracyDrop: accuracyDrop 0.007 is above 0.001") || !strings.Contains(sum.Message, "v1: maxBytes: bytes 300 is above 250") || !strings.Contains(sum.Message, "kept the smallest, v3") {
			t.Errorf("message %q", sum.Message)
		}
	})
	t.Run("a failed run fails only its variant", func(t *testing.T) {
		runs := append([]v1alpha1.StageStatus(nil), done...)
		runs[2] = v1alpha1.StageStatus{Name: "prune/v3", State: v1alpha1.StageFailed, Reason: "BadInput", Message: "boom"}
		runs[5] = pending("int8/v3", "", "")
		sum := SummarizeSweep("ns/j", spec, sw, runs, nil, "v1")
		if v := sum.Variants[2]; v.Phase != v1alpha1.VariantFailed || v.Reason != "BadInput" || v.Message != "stage prune/v3 failed: boom" || v.Passed != nil {
			t.Errorf("v3 %+v", v)
		}
		if sum.Select == nil || sum.Select.Select.Variants[2].Output != nil || sum.Select.Select.Variants[2].Reason != "BadInput" {
			t.Errorf("the select step is not due, or does not say why v3 has no model: %+v", sum.Select)
		}
	})
	t.Run("no variant has a model", func(t *testing.T) {
		runs := []v1alpha1.StageStatus{
			{Name: "prune/v1", State: v1alpha1.StageFailed, Reason: "BadInput", Message: "a"},
			{Name: "prune/v2", State: v1alpha1.StageFailed, Reason: "BackoffLimitExceeded", Message: "b"},
			{Name: "prune/v3", State: v1alpha1.StageFailed, Reason: "BadInput", Message: "c"},
			pending("int8/v1", "", ""), pending("int8/v2", "", ""), pending("int8/v3", "", "")}
		sum := SummarizeSweep("ns/j", spec, sw, runs, nil, "v1")
		want := Summary{Phase: PhaseFailed, Reason: "BadInput", CurrentStage: "prune/v1", Done: 6, Total: 7,
			Message: "no variant produced a model: v1: stage prune/v1 failed: a; v2: stage prune/v2 failed: b; v3: stage prune/v3 failed: c"}
		if diff := cmp.Diff(want, sum.Summary); diff != "" || sum.Select != nil {
			t.Errorf("summary (-want +got):\n%s", diff)
		}
	})
}

// The select step's result must name a model of the task's variants.
func TestSelectResultValidation(t *testing.T) {
	spec, sw := sweepOf(t, sparsities("0.3", "0.6"), setSparsity)
	outs := []*v1alpha1.Artifact{art(300), art(200)}
	task, err := NewSelectTask("ns/j", spec, sw, outs, nil, "v1")
	if err != nil {
		t.Fatal(err)
	}
	res := Result{Version: ContractVersion, Stage: SelectStep, CacheKey: task.CacheKey, Output: outs[1]}
	if err := res.Validate(task); err != nil {
		t.Errorf("a valid select result: %v", err)
	}
	if st := StageStatusFromResult(v1alpha1.StageStatus{Name: SelectStep}, task, res); st.State != v1alpha1.StageSucceeded ||
		!strings.HasPrefix(st.Message, "selected v2 by smallest: s3://o/200/model.onnx") {
		t.Errorf("status %+v", st)
	}
	res.Output = art(100)
	if err := res.Validate(task); err == nil || !strings.Contains(err.Error(), "is not the model of any variant") {
		t.Errorf("a result naming another model: %v", err)
	}
	if _, err := NewSelectTask("ns/j", spec, sw, []*v1alpha1.Artifact{nil, nil}, nil, "v1"); err == nil {
		t.Error("a select task without any model was planned")
	}
	again, _ := NewSelectTask("ns/j", spec, sw, outs, nil, "v1")
	changed, _ := NewSelectTask("ns/j", spec, sw, []*v1alpha1.Artifact{outs[0], art(201)}, nil, "v1")
	if again.CacheKey != task.CacheKey || changed.CacheKey == task.CacheKey {
		t.Errorf("select keys: %s, again %s, another model %s", task.CacheKey, again.CacheKey, changed.CacheKey)
	}
}
