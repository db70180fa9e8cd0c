package runner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/storage"
)

// publishFiles writes a model with its weights in an external data file
// (onnx.Model.WantsExternalData: it was read with some, or it is large):
// saved tensor by tensor to the stage's local folder, hashed as it is
// written, loaded and run by ONNX Runtime from there, then uploaded
// write-once beside the output URI, the data file first and the model
// file last: the model's URI exists only once its data is complete, as a
// model in one file is only seen whole. Its digest is the manifest's
// (pipeline.ManifestDigest), so the cache's verification and GitOps pins
// cover the data too.
//
// A nil artifact says the stage is an index of an Indexed Job that does
// not publish (publishes): it measured its shard and stops there.
func publishFiles(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string), in inputs, out *StageOutput) (*v1alpha1.Artifact, evaluation, error) {
	dir := filepath.Join(in.scratch, "output")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, evaluation{}, err
	}
	step(PhaseWrite, "saving the output with its weights in external data")
	saved, err := out.Model.Save(filepath.Join(dir, baseName(work.OutputURI)), onnx.SaveOptions{ExternalData: true})
	if err != nil {
		return nil, evaluation{}, fmt.Errorf("writing the %s output: %w", task.Stage.Type, err)
	}
	files, size := artifactFiles(saved)
	written, err := onnx.OpenFile(saved[0].Path)
	if err != nil {
		return nil, evaluation{}, fmt.Errorf("reading back the %s output: %w", task.Stage.Type, err)
	}
	written.Name = work.OutputURI
	step(PhaseEvaluate, "loading, running and measuring the output with ONNX Runtime")
	ev, err := evaluate(ctx, work, o, in, output{files: written, size: size})
	if err != nil || !publishes(task, o) {
		return nil, ev, err
	}
	step(PhaseWrite, "writing "+work.OutputURI+" and its external data")
	for i := range saved {
		f := saved[(i+1)%len(saved)] // data first, the model file last
		if err := uploadFile(ctx, o, work.OutputURI, f.Path, files[(i+1)%len(files)]); err != nil {
			return nil, evaluation{}, err
		}
	}
	return &v1alpha1.Artifact{URI: work.OutputURI, Digest: pipeline.ManifestDigest(files), SizeBytes: size, Files: files}, ev, nil
}

// artifactFiles lists what Save wrote, as the artifact names its files.
func artifactFiles(saved []onnx.SavedFile) ([]v1alpha1.ArtifactFile, int64) {
	var size int64
	files := make([]v1alpha1.ArtifactFile, len(saved))
	for i, f := range saved {
		files[i] = v1alpha1.ArtifactFile{Name: filepath.Base(f.Path), Digest: storage.DigestPrefix + f.SHA256, SizeBytes: f.Size}
		size += f.Size
	}
	return files, size
}

// uploadFile writes one file of the output beside modelURI, write-once.
// A file already there with the same content (a run stopped between its
// uploads) is kept; with other content, the stage fails and leaves it.
func uploadFile(ctx context.Context, o *Options, modelURI, path string, want v1alpha1.ArtifactFile) error {
	uri, err := storage.SiblingOf(modelURI, want.Name)
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	obj, err := o.Storage.Write(ctx, uri, f)
	if errors.Is(err, storage.ErrExists) {
		if verr := o.Storage.Verify(ctx, uri, want.Digest, want.SizeBytes); verr != nil {
			return BadInputf("%s is already there with other content than this stage wrote (left untouched): %w", uri, verr)
		}
		o.Log.Warn("a file of the output is already there with the same content: keeping it", "uri", uri)
		return nil
	}
	if err != nil {
		return outputError(err)
	}
	if obj.Digest != want.Digest || obj.Size != want.SizeBytes {
		return fmt.Errorf("%s: uploaded %s (%d bytes), but %s (%d bytes) was written locally", uri, obj.Digest, obj.Size, want.Digest, want.SizeBytes)
	}
	return nil
}
