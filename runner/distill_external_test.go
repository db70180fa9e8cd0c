package runner

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// Distillation holds its teacher in memory as one file; a teacher whose
// weights live in external data files, as the job's source or as
// distill.teacher.uri, is refused as bad input naming it, before any
// training, and nothing is written.
func TestDistillRefusesExternalTeacher(t *testing.T) {
	orttest.Require(t)
	az := storagetest.StartAzurite(t, "models")
	dir := decoderFiles(t)
	if err := modelgen.Decoder(modelgen.SmallDecoder).SaveFile(filepath.Join(dir, "inline.onnx"), onnx.SaveOptions{}); err != nil {
		t.Fatal(err)
	}
	upload(t, az, "m", dir, "model.onnx", "model.onnx.data", "inline.onnx", "tokens.npz")
	external, inline := az.URI("models", "m/model.onnx"), az.URI("models", "m/inline.onnx")
	for _, tc := range []struct {
		name, source string
		distill      v1alpha1.DistillSpec
	}{
		{"the source", external, v1alpha1.DistillSpec{Student: &v1alpha1.ModelRef{URI: inline}}},
		{"distill.teacher.uri", inline, v1alpha1.DistillSpec{Teacher: &v1alpha1.ModelRef{URI: external}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := "out-" + strings.ReplaceAll(tc.name, " ", "-")
			d := tc.distill
			d.MaxSteps = 1
			spec := decoderJob(az, "m", out, v1alpha1.Stage{Name: "distill", StageBody: v1alpha1.StageBody{
				Type: v1alpha1.StageTypeDistill, Distill: &d}})
			spec.Source.URI = tc.source
			task, err := pipeline.NewTask("test/job", spec, 0, pipeline.SourceRef(spec), pipeline.Version)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Execute(context.Background(), task, Options{})
			want := "the teacher " + external + " keeps its weights in external data files"
			if ExitCode(err) != pipeline.ExitBadInput || !strings.Contains(res.Message, want) {
				t.Errorf("exit %d, message %q; want exit 65 saying %q", ExitCode(err), res.Message, want)
			}
			keys, err := az.Keys("models")
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range keys {
				if strings.HasPrefix(k, out+"/") {
					t.Errorf("%s was written", k)
				}
			}
		})
	}
}
