package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
)

// ReleaseVersion is the schema of release.json.
const ReleaseVersion = "kompress.dev/release/v1"

// Release is release.json, written beside the final model of a job: the
// provenance a promotion step needs to pin the model by digest and say how
// it was made. It holds no job name and no time, so every job that produces
// the same content-addressed model describes it the same way.
type Release struct {
	Version string `json:"version"`
	// Model is the final model, with the metrics its stage measured.
	Model v1alpha1.Artifact `json:"model"`
	// Source is the model the chain started from, with its digest.
	Source  pipeline.Ref         `json:"source"`
	Dataset *pipeline.DatasetRef `json:"dataset,omitempty"`
	// Evaluation is how the metrics were measured.
	Evaluation v1alpha1.EvaluationSpec `json:"evaluation"`
	// Stages in order: spec, cache key and output of each.
	Stages []pipeline.ChainLink `json:"stages"`
	// Report is report.html beside this file: the plots of the model
	// against the source, its stages and its layers (or, for a sweep,
	// of every variant).
	Report string `json:"report,omitempty"`
	// Selection, in a sweep's release.json, says how Model was chosen
	// among the variants and lists them all.
	Selection *Selection `json:"selection,omitempty"`
	// RunnerVersion is the runner binary that wrote this file;
	// CacheVersion the version the cache keys were computed with.
	RunnerVersion string `json:"runnerVersion"`
	CacheVersion  string `json:"cacheVersion"`
}

// ReleaseURI is where the release manifest of a final stage goes.
func ReleaseURI(t pipeline.Task) string {
	return pipeline.SiblingURI(t.OutputURI, pipeline.ReleaseFile)
}

// writeRelease writes release.json beside the final stage's model, from the
// committed result (the result.json that is there, cached or just written),
// write-once: an existing manifest is kept. Earlier stages write none.
func writeRelease(ctx context.Context, task pipeline.Task, o *Options, res pipeline.Result) error {
	if task.Index != task.Stages-1 || res.Output == nil {
		return nil
	}
	uri := ReleaseURI(task)
	if ok, err := o.Storage.Exists(ctx, uri); err != nil || ok {
		return err
	}
	rel, err := buildRelease(ctx, task, o.Storage, res)
	if err != nil {
		return err
	}
	// report.html first, so that the release never links a report that
	// is not there.
	rel.Report = pipeline.SiblingURI(uri, pipeline.ReportFile)
	d, err := ChainReport(ctx, o.Storage, rel.Source, rel.Stages, &res, nil)
	if err == nil {
		err = writeReport(ctx, o.Storage, rel.Report, d)
	}
	if err != nil {
		return err
	}
	return writeJSON(ctx, o.Storage, uri, rel)
}

// writeJSON writes v as indented JSON, write-once: an existing file is kept.
func writeJSON(ctx context.Context, st *storage.Client, uri string, v any) error {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if _, err := st.WriteBytes(ctx, uri, append(body, '\n')); err != nil && !errors.Is(err, storage.ErrExists) {
		return fmt.Errorf("writing %s: %w", uri, err)
	}
	return nil
}

func buildRelease(ctx context.Context, task pipeline.Task, st *storage.Client, res pipeline.Result) (Release, error) {
	rel := Release{
		Version:       ReleaseVersion,
		Model:         *res.Output.DeepCopy(),
		Source:        task.Source,
		Dataset:       task.Dataset,
		Evaluation:    task.Evaluation,
		Stages:        append([]pipeline.ChainLink(nil), task.Chain...),
		RunnerVersion: pipeline.Version,
		CacheVersion:  task.RunnerVersion,
	}
	if len(rel.Stages) == 0 {
		// A task planned without its chain: this stage is all we know.
		rel.Stages = []pipeline.ChainLink{{Stage: task.Stage, CacheKey: task.CacheKey}}
	}
	last := &rel.Stages[len(rel.Stages)-1]
	last.Output = pipeline.Ref{URI: res.Output.URI, Digest: res.Output.Digest}
	if rel.Source.Digest != "" {
		return rel, nil
	}
	// The source is not pinned: its digest is what the first stage read.
	if task.Index == 0 {
		rel.Source.Digest = res.Input.Digest
		return rel, nil
	}
	first := rel.Stages[0]
	if first.Output.URI == "" {
		return rel, nil
	}
	data, _, err := st.ReadAll(ctx, pipeline.SiblingURI(first.Output.URI, pipeline.ResultFile), "")
	if err != nil {
		return rel, fmt.Errorf("reading the first stage's result for the source digest: %w", err)
	}
	r0, err := pipeline.DecodeResult(data)
	if err != nil {
		return rel, fmt.Errorf("the first stage's result.json: %w", err)
	}
	if r0.Input.URI == task.Source.URI {
		rel.Source.Digest = r0.Input.Digest
	}
	return rel, nil
}
