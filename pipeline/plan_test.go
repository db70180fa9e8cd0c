package pipeline

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

func testSpec() *v1alpha1.CompressionJobSpec {
	return &v1alpha1.CompressionJobSpec{
		Source:  v1alpha1.ModelSource{URI: "s3://models/mnist.onnx", SHA256: strings.Repeat("a", 64)},
		Output:  v1alpha1.OutputSpec{URI: "s3://models/out"},
		Dataset: &v1alpha1.DatasetSpec{URI: "s3://data/mnist.npz", Format: v1alpha1.DatasetFormatNPZ},
		Stages: []v1alpha1.Stage{
			{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}},
			{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Bits: 8}}},
		},
	}
}

func TestNewTask(t *testing.T) {
	spec := testSpec()
	in, err := StageInput(spec, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	task, err := NewTask("ns/mnist", spec, 0, in, "v1")
	if err != nil {
		t.Fatal(err)
	}
	want := Ref{URI: "s3://models/mnist.onnx", Digest: "sha256:" + strings.Repeat("a", 64)}
	if diff := cmp.Diff(want, task.Input); diff != "" {
		t.Errorf("input (-want +got):\n%s", diff)
	}
	if task.OutputURI != "s3://models/out/"+task.CacheKey+"/model.onnx" {
		t.Errorf("output URI %q is not <output>/<key>/model.onnx", task.OutputURI)
	}
	if task.ResultURI() != "s3://models/out/"+task.CacheKey+"/result.json" {
		t.Errorf("result URI %q", task.ResultURI())
	}
	enc, err := task.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeTask([]byte(enc))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(task, back); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if _, err := StageInput(spec, 1, nil); err == nil {
		t.Error("stage 1 without a previous artifact must be an error")
	}
	if _, err := NewTask("j", spec, 2, in, "v1"); err == nil {
		t.Error("index past the last stage must be an error")
	}
}

func TestCacheKey(t *testing.T) {
	base := func() Task {
		task, err := NewTask("j", testSpec(), 0, SourceRef(testSpec()), "v1")
		if err != nil {
			t.Fatal(err)
		}
		return task
	}
	key := base().CacheKey
	same := map[string]func(*Task){
		"job name":      func(t *Task) { t.Job = "other" },
		"stage name":    func(t *Task) { t.Stage.Name = "renamed" },
		"layer workers": func(t *Task) { t.Layers = 4; t.OriginalLayerInputs = false },
	}
	for name, edit := range same {
		task := base()
		edit(&task)
		if CacheKey(task) != key {
			t.Errorf("%s changed the cache key", name)
		}
	}
	differ := map[string]func(*Task){
		"input digest":          func(t *Task) { t.Input.Digest = "sha256:" + strings.Repeat("b", 64) },
		"sparsity":              func(t *Task) { p := *t.Stage.Prune; p.Sparsity = "0.6"; t.Stage.Prune = &p },
		"dataset":               func(t *Task) { t.Dataset = &DatasetRef{Ref: Ref{URI: "s3://data/other.npz"}} },
		"runner version":        func(t *Task) { t.RunnerVersion = "v2" },
		"evaluation":            func(t *Task) { t.Evaluation.Samples = 10 },
		"original layer inputs": func(t *Task) { t.OriginalLayerInputs = true },
	}
	for name, edit := range differ {
		task := base()
		edit(&task)
		if CacheKey(task) == key {
			t.Errorf("%s did not change the cache key", name)
		}
	}
}

func TestDecodeTaskRejects(t *testing.T) {
	tests := map[string]string{
		"not json":      `{`,
		"unknown field": `{"version":"kompress.dev/v1","bogus":1}`,
		"wrong version": `{"version":"v0","job":"j","index":0,"stages":1,"stage":{"name":"s","type":"Prune","prune":{"method":"nm"}},"input":{"uri":"mem://a"},"source":{"uri":"mem://a"},"evaluation":{},"cacheKey":"` + strings.Repeat("a", 64) + `","outputURI":"mem://o","runnerVersion":"v"}`,
		"two bodies":    `{"version":"kompress.dev/v1","job":"j","index":0,"stages":1,"stage":{"name":"s","type":"Prune","prune":{"method":"nm"},"quantize":{"method":"static"}},"input":{"uri":"mem://a"},"source":{"uri":"mem://a"},"evaluation":{},"cacheKey":"` + strings.Repeat("a", 64) + `","outputURI":"mem://o","runnerVersion":"v"}`,
	}
	for name, doc := range tests {
		if _, err := DecodeTask([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
