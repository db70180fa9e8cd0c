package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

func testTask(t *testing.T) Task {
	t.Helper()
	spec := &v1alpha1.CompressionJobSpec{
		Source: v1alpha1.ModelSource{URI: "s3://m/src.onnx"},
		Output: v1alpha1.OutputSpec{URI: "s3://m/out"},
		Stages: []v1alpha1.Stage{{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}}},
	}
	task, err := NewTask("ns/job", spec, 0, SourceRef(spec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func TestStageStatusFromResult(t *testing.T) {
	task := testTask(t)
	digest := "sha256:" + strings.Repeat("c", 64)
	ok := Result{Version: ContractVersion, Stage: "int8", CacheKey: task.CacheKey,
		Output: &v1alpha1.Artifact{URI: task.OutputURI, Digest: digest, SizeBytes: 42, Metrics: map[string]string{MetricBytes: "42"}}}
	base := v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1}
	with := func(f func(*Result)) Result {
		r := ok
		o := *ok.Output
		r.Output = &o
		f(&r)
		return r
	}
	cases := []struct {
		name   string
		result Result
		want   v1alpha1.StageStatus
		msgHas string
	}{
		{"success", ok, v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey,
			State: v1alpha1.StageSucceeded, Reason: v1alpha1.ReasonSucceeded, Message: "wrote " + task.OutputURI, Output: ok.Output}, ""},
		{"runner found its earlier result", with(func(r *Result) { r.Cached = true }), v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc",
			Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageCached, Reason: ReasonCached, Output: ok.Output}, "written by an earlier run"},
		{"unpinned, at its content key", with(func(r *Result) {
			r.ContentKey = strings.Repeat("d", 64)
			r.Output.URI = rekeyURI(task.OutputURI, r.ContentKey)
		}), v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey, ContentKey: strings.Repeat("d", 64),
			State: v1alpha1.StageSucceeded, Reason: v1alpha1.ReasonSucceeded, Output: &v1alpha1.Artifact{URI: rekeyURI(task.OutputURI, strings.Repeat("d", 64)),
				Digest: digest, SizeBytes: 42, Metrics: map[string]string{MetricBytes: "42"}}}, "/" + strings.Repeat("d", 64) + "/model.onnx"},
		{"success with warnings", with(func(r *Result) { r.Warnings = []string{"LSTM weights left dense", "2 weights kept at 8 bits"} }),
			v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageSucceeded,
				Reason: v1alpha1.ReasonSucceededWithWarnings, Output: ok.Output,
				Message: "wrote " + task.OutputURI + "; warning: LSTM weights left dense; warning: 2 weights kept at 8 bits"}, ""},
		{"cached with warnings", with(func(r *Result) { r.Cached, r.Warnings = true, []string{"LSTM weights left dense"} }),
			v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageCached,
				Reason: ReasonCached, Output: ok.Output,
				Message: "reused " + task.OutputURI + ", written by an earlier run; warning: LSTM weights left dense"}, ""},
		{"runner-reported failure", Result{Version: ContractVersion, Stage: "int8", Reason: "BadInput", Message: "no weights"},
			v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageFailed,
				Reason: "BadInput", Message: "no weights"}, ""},
		{"made-up reason is replaced", Result{Reason: "not a reason!", Message: "x"}, v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc",
			Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageFailed, Reason: v1alpha1.ReasonStageFailed, Message: "x"}, ""},
		{"wrong output URI", with(func(r *Result) { r.Output.URI = "s3://other/model.onnx" }), v1alpha1.StageStatus{Name: "int8",
			JobName: "j-0-int8-abc", Attempts: 1, CacheKey: task.CacheKey, State: v1alpha1.StageFailed, Reason: v1alpha1.ReasonInvalidResult},
			`result.output.uri is "s3://other/model.onnx"`},
		{"no output", with(func(r *Result) { r.Output = nil }), v1alpha1.StageStatus{Name: "int8", JobName: "j-0-int8-abc", Attempts: 1,
			CacheKey: task.CacheKey, State: v1alpha1.StageFailed, Reason: v1alpha1.ReasonInvalidResult}, "stage int8 returned an invalid result"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := StageStatusFromResult(base, task, tc.result)
			if tc.msgHas != "" {
				if !strings.Contains(got.Message, tc.msgHas) {
					t.Errorf("message %q does not contain %q", got.Message, tc.msgHas)
				}
				tc.want.Message = got.Message
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("StageStatusFromResult (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStageWarnings(t *testing.T) {
	long := strings.Repeat("w", 2*MaxWarning)
	task := testTask(t)
	ok := Result{Version: ContractVersion, Stage: "int8", CacheKey: task.CacheKey,
		Output: &v1alpha1.Artifact{URI: task.OutputURI, Digest: "sha256:" + strings.Repeat("c", 64), SizeBytes: 42}}
	cases := []struct {
		name     string
		warnings []string
		want     []string
	}{
		{"none", nil, nil},
		{"one", []string{"a"}, []string{"a"}},
		{"long ones are cut", []string{long}, []string{long[:MaxWarning-3] + "..."}},
		{"many are counted", []string{"a", "b", "c", "d", "e", "f"}, []string{"a", "b", "c", "and 3 more warnings (result.json lists what was left out)"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			r.Warnings = tc.warnings
			s := StageStatusFromResult(v1alpha1.StageStatus{Name: "int8"}, task, r)
			if diff := cmp.Diff(tc.want, StageWarnings(s)); diff != "" {
				t.Errorf("StageWarnings (-want +got):\n%s", diff)
			}
			if len(s.Message) > MaxStatusMessage {
				t.Errorf("message is %d bytes", len(s.Message))
			}
			b, err := r.TerminationMessage()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeResult(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, back.Warnings); diff != "" {
				t.Errorf("warnings in the termination message (-want +got):\n%s", diff)
			}
		})
	}
	failed := StageStatusFromResult(v1alpha1.StageStatus{Name: "int8"}, task, Result{Reason: "BadInput", Message: "x; warning: y"})
	if got := StageWarnings(failed); got != nil {
		t.Errorf("a failed stage's message gave warnings %q", got)
	}
}

func TestTruncate(t *testing.T) {
	cases := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456..."},
		{"ééééé", 6, "é..."}, // never cuts a rune in half
	}
	for _, tc := range cases {
		if got := Truncate(tc.in, tc.n); got != tc.want || len(got) > tc.n {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestSafeReason(t *testing.T) {
	cases := map[string]string{
		"BadInput": "BadInput", "Stage_Failed:2": "Stage_Failed:2", "": "Fallback", "has space": "Fallback",
		"1Starts": "Fallback", "ends,": "Fallback", strings.Repeat("A", 129): "Fallback",
	}
	for in, want := range cases {
		if got := SafeReason(in, "Fallback"); got != want {
			t.Errorf("SafeReason(%q) = %q, want %q", in, got, want)
		}
	}
}
