package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/report"
	"github.com/kompress/kompress/runner/storage"
)

// reportPath is where the report of the i-th of n jobs goes: path itself
// for one job, path with the job's name before its extension for more.
func reportPath(path string, job *v1alpha1.CompressionJob, n int) string {
	if n <= 1 {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + "-" + job.Name + ext
}

// writeLocalReport writes the report of a finished job to path: a sweep's
// is the report its select step wrote to storage, byte for byte; a
// chain's is the report beside its final model with the job's own gates
// drawn (the one in storage has none: the model is shared by every job
// that produces it).
func writeLocalReport(ctx context.Context, job *v1alpha1.CompressionJob, path string) error {
	st := &job.Status
	var page []byte
	if sel := st.Selection; sel != nil && sel.Report != "" {
		data, _, err := storage.Default.ReadAll(ctx, sel.Report, "")
		if err != nil {
			return fmt.Errorf("reading the sweep's report: %w", err)
		}
		page = data
	} else {
		var links []pipeline.ChainLink
		for i, s := range st.Stages {
			if s.Output == nil || i >= len(job.Spec.Stages) {
				break
			}
			links = append(links, pipeline.ChainLink{Stage: pipeline.StageSpecOf(job.Spec.Stages[i]), CacheKey: s.CacheKey, ContentKey: s.ContentKey,
				Output: pipeline.Ref{URI: s.Output.URI, Digest: s.Output.Digest}})
		}
		if len(links) == 0 {
			return fmt.Errorf("no stage of %s produced a model to report on", job.Name)
		}
		d, err := runner.ChainReport(ctx, storage.Default, pipeline.SourceRef(&job.Spec), links, nil, job.Spec.Acceptance)
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := report.Render(&b, d); err != nil {
			return err
		}
		page = b.Bytes()
	}
	return os.WriteFile(path, page, 0o644)
}
