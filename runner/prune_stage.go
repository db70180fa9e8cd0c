package runner

import (
	"context"

	"github.com/kompress/kompress/runner/prune"
)

func pruneStage(ctx context.Context, in *StageInput) (*StageOutput, error) {
	out, report, err := prune.Prune(ctx, in.Model, *in.Task.Stage.Prune, in.Data, func(done, total int) {
		in.Progress(int64(done), int64(total), "layers")
	})
	if err != nil {
		return nil, err
	}
	in.Log.Info("pruned", "summary", report.Summary())
	return &StageOutput{Model: out, Details: report}, nil
}
