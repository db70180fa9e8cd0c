package pipeline

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

// TestCacheKeyIsStable pins the keys of three tasks: a refactoring of the
// task or stage types that changed the key material would make every
// stored artifact unreachable without any change in the work.
func TestCacheKeyIsStable(t *testing.T) {
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	yes := true
	spec := &v1alpha1.CompressionJobSpec{
		Source:  v1alpha1.ModelSource{URI: "s3://m/model.onnx", SHA256: digest[len("sha256:"):]},
		Output:  v1alpha1.OutputSpec{URI: "s3://m/out"},
		Dataset: &v1alpha1.DatasetSpec{URI: "s3://d/x.npz"},
		Stages: []v1alpha1.Stage{
			{Name: "p", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}},
			{Name: "q", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, PerChannel: &yes}}},
			{Name: "c", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: "x", Command: []string{"a"}}}},
		},
	}
	want := []string{
		"cfcc3f9fb36791a9579e8660947e5c9c46a1de787de0aae7a74ec47fb023acf6",
		"de22a1ed259ad8e2af1b4b47fa5d1736ba04deb3e89d2caf557a5afda2a0e63d",
		"b480ce52698249557b4dfcd1ee1fafbf0025b0f528e45547fe83a3f4e8f72409",
	}
	var got []string
	for i := range spec.Stages {
		task, err := NewTask("ns/j", spec, i, Ref{URI: "s3://m/in.onnx", Digest: digest}, "v1")
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, task.CacheKey)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("cache keys changed (-want +got):\n%s", d)
	}
	// Renaming a stage does not change its work.
	spec.Stages[0].Name = "renamed"
	task, err := NewTask("ns/j", spec, 0, Ref{URI: "s3://m/in.onnx", Digest: digest}, "v1")
	if err != nil {
		t.Fatal(err)
	}
	if task.CacheKey != want[0] {
		t.Errorf("renaming the stage changed its key to %s", task.CacheKey)
	}
}

// smoothQuant alpha off is no smoothQuant: the same key, so a sweep's
// "off" variant shares the cache of the job without it; any other alpha
// keys differently.
func TestCacheKeySmoothQuantOff(t *testing.T) {
	key := func(sq *v1alpha1.SmoothQuant) string {
		spec := &v1alpha1.CompressionJobSpec{
			Source:  v1alpha1.ModelSource{URI: "s3://m/model.onnx"},
			Output:  v1alpha1.OutputSpec{URI: "s3://m/out"},
			Dataset: &v1alpha1.DatasetSpec{URI: "s3://d/x.npz"},
			Stages: []v1alpha1.Stage{{Name: "q", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize,
				Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: sq}}}},
		}
		task, err := NewTask("ns/j", spec, 0, Ref{URI: "s3://m/model.onnx"}, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if spec.Stages[0].Quantize.SmoothQuant != sq {
			t.Fatal("the key changed the spec")
		}
		return task.CacheKey
	}
	none := key(nil)
	if off := key(&v1alpha1.SmoothQuant{Alpha: v1alpha1.SmoothQuantOff}); off != none {
		t.Errorf("alpha off keyed %s, no smoothQuant %s: want the same", off, none)
	}
	for _, a := range []string{"0.5", v1alpha1.SmoothQuantAuto} {
		if k := key(&v1alpha1.SmoothQuant{Alpha: a}); k == none {
			t.Errorf("alpha %s keyed like no smoothQuant", a)
		}
	}
}
