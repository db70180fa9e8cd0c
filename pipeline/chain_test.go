package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestSetChain(t *testing.T) {
	spec := &v1alpha1.CompressionJobSpec{
		Source: v1alpha1.ModelSource{URI: "s3://m/src.onnx"},
		Output: v1alpha1.OutputSpec{URI: "s3://m/out"},
		Stages: []v1alpha1.Stage{
			{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}},
			{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}},
		},
	}
	key0 := strings.Repeat("a", 64)
	prev := []v1alpha1.StageStatus{{Name: "prune", CacheKey: key0, State: v1alpha1.StageSucceeded,
		Output: &v1alpha1.Artifact{URI: "s3://m/out/" + key0 + "/model.onnx", Digest: "sha256:" + key0}}}

	first, err := NewTask("ns/job", spec, 0, SourceRef(spec), "v1")
	if err != nil {
		t.Fatal(err)
	}
	first.SetChain(spec, nil)
	if first.Chain != nil {
		t.Errorf("a stage that is not the last got a chain: %+v", first.Chain)
	}

	last, err := NewTask("ns/job", spec, 1, Ref{URI: prev[0].Output.URI, Digest: prev[0].Output.Digest}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	keyBefore := last.CacheKey
	last.SetChain(spec, prev)
	want := []ChainLink{
		{Stage: StageSpec{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: spec.Stages[0].Prune}}, CacheKey: key0,
			Output: Ref{URI: prev[0].Output.URI, Digest: prev[0].Output.Digest}},
		{Stage: last.Stage, CacheKey: last.CacheKey, Output: Ref{URI: last.OutputURI}},
	}
	if diff := cmp.Diff(want, last.Chain); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	if CacheKey(last) != keyBefore {
		t.Error("the chain changed the cache key")
	}
	enc, err := last.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTask([]byte(enc))
	if err != nil {
		t.Fatalf("a task with a chain does not decode: %v", err)
	}
	if diff := cmp.Diff(last.Chain, back.Chain); diff != "" {
		t.Errorf("chain after a round trip (-want +got):\n%s", diff)
	}

	short := last
	short.Chain = nil
	short.SetChain(spec, nil) // statuses of the earlier stages unknown
	if short.Chain != nil {
		t.Errorf("a chain was made without the earlier stages' statuses: %+v", short.Chain)
	}
}
