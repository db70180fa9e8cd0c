package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

const (
	digestA = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	digestB = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	digestC = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
)

func resolveSpec(sourceSHA, datasetSHA string) *v1alpha1.CompressionJobSpec {
	return &v1alpha1.CompressionJobSpec{
		Source:  v1alpha1.ModelSource{URI: "s3://m/model.onnx?endpoint=http://127.0.0.1:9000", SHA256: sourceSHA},
		Output:  v1alpha1.OutputSpec{URI: "s3://m/out?endpoint=http://127.0.0.1:9000"},
		Dataset: &v1alpha1.DatasetSpec{URI: "s3://d/x.npz", SHA256: datasetSHA},
		Stages: []v1alpha1.Stage{{Name: "q", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize,
			Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}}},
	}
}

func TestResolve(t *testing.T) {
	measured := Digests{Input: digestA, Source: digestA, Dataset: digestB}
	unpinned, err := NewTask("ns/j", resolveSpec("", ""), 0, Ref{URI: "s3://m/model.onnx?endpoint=http://127.0.0.1:9000"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	unpinned.SetChain(resolveSpec("", ""), nil)
	// The same work planned with the digests pinned.
	pinnedSpec := resolveSpec(digestA[len("sha256:"):], digestB[len("sha256:"):])
	pinned, err := NewTask("ns/j", pinnedSpec, 0, SourceRef(pinnedSpec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	if unpinned.Pinned() || !pinned.Pinned() {
		t.Fatalf("Pinned: unpinned %v, pinned %v", unpinned.Pinned(), pinned.Pinned())
	}
	r := unpinned.Resolve(measured)
	got := struct{ Key, Output, ChainKey, ChainContentKey, ChainOutput string }{r.CacheKey, r.OutputURI, r.Chain[0].CacheKey, r.Chain[0].ContentKey, r.Chain[0].Output.URI}
	want := struct{ Key, Output, ChainKey, ChainContentKey, ChainOutput string }{pinned.CacheKey, pinned.OutputURI, unpinned.CacheKey, pinned.CacheKey, pinned.OutputURI}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("resolving an unpinned task must give the pinned task's key and output (-want +got):\n%s", d)
	}
	if !strings.Contains(r.OutputURI, "?endpoint=") {
		t.Errorf("the output %s lost its query", r.OutputURI)
	}
	if unpinned.Dataset.Digest != "" || unpinned.Chain[0].ContentKey != "" || unpinned.Chain[0].Output.URI != unpinned.OutputURI {
		t.Error("Resolve changed the task it was called on")
	}
	if other := unpinned.Resolve(Digests{Input: digestC, Source: digestC, Dataset: digestB}); other.CacheKey == r.CacheKey {
		t.Error("a replaced source file kept the same content key")
	}
	if d := cmp.Diff(pinned, pinned.Resolve(Digests{Input: digestC, Source: digestC, Dataset: digestC})); d != "" {
		t.Errorf("resolving a pinned task changed it:\n%s", d)
	}
}

func TestResultContentKey(t *testing.T) {
	unpinned, err := NewTask("ns/j", resolveSpec("", ""), 0, Ref{URI: "s3://m/model.onnx"}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	work := unpinned.Resolve(Digests{Input: digestA, Source: digestA, Dataset: digestB})
	pinnedSpec := resolveSpec(digestA[len("sha256:"):], digestB[len("sha256:"):])
	pinned, err := NewTask("ns/j", pinnedSpec, 0, SourceRef(pinnedSpec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	result := func(task Task, contentKey, uri string) Result {
		return Result{Version: ContractVersion, Stage: "q", CacheKey: task.CacheKey, ContentKey: contentKey,
			Output: &v1alpha1.Artifact{URI: uri, Digest: digestC, SizeBytes: 10}}
	}
	tests := []struct {
		name   string
		task   Task
		result Result
		err    string
	}{
		{"unpinned, at the content key", unpinned, result(unpinned, work.CacheKey, work.OutputURI), ""},
		{"unpinned, at the plan key", unpinned, result(unpinned, "", unpinned.OutputURI), ""},
		{"unpinned, output elsewhere", unpinned, result(unpinned, work.CacheKey, unpinned.OutputURI), "result.output.uri"},
		{"unpinned, malformed key", unpinned, result(unpinned, "xyz", work.OutputURI), "not 64 lowercase hex digits"},
		{"pinned, at its key", pinned, result(pinned, "", pinned.OutputURI), ""},
		{"pinned claims another key", pinned, result(pinned, digestC[7:], rekeyURI(pinned.OutputURI, digestC[7:])), "the task pins every input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.result.Validate(tt.task)
			if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
		})
	}
}
