package runner

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/prune"
)

func init() {
	register(v1alpha1.StageTypePrune, Stage{Describe: describePrune, Transform: pruneStage})
}

func describePrune(s pipeline.StageSpec) string {
	p := s.Prune
	return fmt.Sprintf("method=%s sparsity=%s pattern=%s", p.Method, p.Sparsity, p.Pattern)
}

func pruneStage(ctx context.Context, in *StageInput) (*StageOutput, error) {
	opts, err := pruneOptions(*in.Task.Stage.Prune)
	if err != nil {
		return nil, err
	}
	opts.Shards = max(in.Task.Shards, 1)
	opts.Exchange = in.Exchange
	opts.LayerPod = in.LayerPod
	opts.Layers, opts.OriginalLayerInputs = in.Task.Layers, in.Task.OriginalLayerInputs
	if opts.Inputs, err = inputSpecs(in.Task.Evaluation.Inputs); err != nil {
		return nil, BadInput(err)
	}
	out, report, err := prune.Prune(ctx, in.Model, opts, in.Data, func(done, total int) {
		in.Progress(int64(done), int64(total), "layers")
	})
	if err != nil {
		return nil, err
	}
	in.Log.Info("pruned", "summary", report.Summary())
	return &StageOutput{Model: out, Details: report, Warnings: report.Warnings}, nil
}
