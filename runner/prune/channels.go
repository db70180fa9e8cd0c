package prune

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// pruneChannels runs the structured methods (structured, entropy), which
// live in package runner/prune/structured.
func pruneChannels(_ context.Context, _ *onnx.Model, spec v1alpha1.PruneSpec, _ *dataset.Dataset, _ func(done, total int)) (*onnx.Model, *Report, error) {
	return nil, nil, fmt.Errorf("%w: prune.method %s is not available in this runner yet (runner/prune/structured has not landed)", ErrSpec, spec.Method)
}
