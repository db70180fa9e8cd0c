package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
)

// cachedResult returns the result an earlier run published for work (the
// task as planned, or resolved to the content it read: see
// pipeline.Task.Resolve), answering task. A result.json that exists but
// does not describe this work is reported, never overwritten; so is a
// model that changed after its result was written.
func cachedResult(ctx context.Context, task, work pipeline.Task, st *storage.Client) (pipeline.Result, bool, error) {
	data, _, err := st.ReadAll(ctx, work.ResultURI(), "")
	if errors.Is(err, storage.ErrNotFound) {
		return pipeline.Result{}, false, nil
	}
	if err != nil {
		return pipeline.Result{}, false, err
	}
	res, err := pipeline.DecodeResult(data)
	if err == nil {
		err = describes(res, work)
	}
	if err != nil {
		return pipeline.Result{}, false, BadInputf("%s exists but is not a result for this task (left untouched): %w", work.ResultURI(), err)
	}
	if err := verifyArtifact(ctx, st, res); err != nil {
		return pipeline.Result{}, false, err
	}
	answer(&res, task, work)
	res.Cached = true
	return res, true, nil
}

// describes checks that a stored result is the work's: the key it was
// stored under (its content key, else its cache key) and its output. Its
// stage name is not compared: renaming a stage does not change its work.
func describes(res pipeline.Result, work pipeline.Task) error {
	if err := res.ValidateShape(); err != nil {
		return err
	}
	key := res.ContentKey
	if key == "" {
		key = res.CacheKey
	}
	if key != work.CacheKey {
		return fmt.Errorf("it is stored for key %s, not %s", key, work.CacheKey)
	}
	if res.Output.URI != work.OutputURI {
		return fmt.Errorf("result.output.uri is %q, expected %q", res.Output.URI, work.OutputURI)
	}
	return nil
}

// answer labels a result as the answer to task: its stage and plan key,
// and the content key the work was stored under when that differs.
func answer(res *pipeline.Result, task, work pipeline.Task) {
	res.Version, res.Stage, res.CacheKey, res.ContentKey = pipeline.ContractVersion, task.Stage.Name, task.CacheKey, ""
	if work.CacheKey != task.CacheKey {
		res.ContentKey = work.CacheKey
	}
}

// verifyArtifact checks that the model a stored result names is still the
// one it measured: a cache hit must not vouch for bytes replaced since.
// Nothing is overwritten (artifacts are write-once); the stage fails and
// says how to recompute.
func verifyArtifact(ctx context.Context, st *storage.Client, res pipeline.Result) error {
	out := res.Output
	err := verifyFiles(ctx, st, out)
	if err == nil || !(errors.Is(err, storage.ErrDigestMismatch) || errors.Is(err, storage.ErrNotFound)) {
		return err
	}
	return &Error{Code: pipeline.ExitBadInput, Reason: "ArtifactChanged", Err: fmt.Errorf(
		"artifact changed after it was written: %s no longer holds the %s (%d bytes) its result.json records (%w); delete that cache key's folder to compute it again",
		out.URI, out.Digest, out.SizeBytes, err)}
}

// verifyFiles checks the artifact's one file, or, for a model written with
// external data, every file its manifest lists, and that the manifest is
// the one its digest names.
func verifyFiles(ctx context.Context, st *storage.Client, out *v1alpha1.Artifact) error {
	if len(out.Files) == 0 {
		return st.Verify(ctx, out.URI, out.Digest, out.SizeBytes)
	}
	if got := pipeline.ManifestDigest(out.Files); got != out.Digest {
		return &storage.Error{Op: "verify", URI: out.URI, Kind: storage.KindDigestMismatch,
			Err: fmt.Errorf("its files' manifest is %s", got)}
	}
	for _, f := range out.Files {
		uri, err := storage.SiblingOf(out.URI, f.Name)
		if err != nil {
			return err
		}
		if err := st.Verify(ctx, uri, f.Digest, f.SizeBytes); err != nil {
			return err
		}
	}
	return nil
}
