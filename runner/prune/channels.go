package prune

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/prune/structured"
)

// pruneChannels runs the structured methods (structured: channels scored
// by the L1 or L2 norm of their filters; entropy: by the entropy of their
// activations), which package runner/prune/structured implements. The
// spec is checked here so that its mistakes are ErrSpec like the other
// methods'.
func pruneChannels(ctx context.Context, m *onnx.Model, spec v1alpha1.PruneSpec, data *dataset.Dataset, progress func(done, total int)) (*onnx.Model, *Report, error) {
	start := time.Now()
	opts, err := channelOptions(spec)
	if err != nil {
		return nil, nil, err
	}
	if data != nil {
		if opts.Calibration, err = fitData(m, data); err != nil {
			return nil, nil, err
		}
	}
	if opts.Criterion == structured.Entropy && opts.Calibration == nil {
		return nil, nil, fmt.Errorf("%w: method entropy scores channels by their activations on the job's dataset (spec.dataset), and there is none", ErrCalibration)
	}
	if opts.Criterion == structured.Reconstruction && opts.Calibration == nil {
		return nil, nil, fmt.Errorf("%w: prune.criterion reconstruction measures the channels' activations on the job's dataset (spec.dataset), and there is none", ErrCalibration)
	}
	opts.Progress = progress
	out, rep, err := structured.Prune(ctx, m, opts)
	if errors.Is(err, structured.ErrNothingPrunable) {
		return nil, nil, fmt.Errorf("%w: %w", ErrNothingPrunable, err)
	}
	if err != nil {
		return nil, nil, err
	}
	report := &Report{
		Method: spec.Method, Sparsity: opts.Fraction, Scope: v1alpha1.PruneScope(rep.Scope), Storage: v1alpha1.StorageDense,
		Structured: rep, Seconds: time.Since(start).Seconds(),
	}
	recoveryWarnings(report)
	return out, report, nil
}

// recoveryCosine: structured pruning whose outputs keep a lower cosine to
// the source's (on the first calibration samples) is reported as needing
// recovery. On mnist-8, 0.99 is about a point of accuracy.
const recoveryCosine = 0.99

// recoveryWarnings marks a structured report whose model needs
// fine-tuning, and says why.
func recoveryWarnings(r *Report) {
	s := r.Structured
	if s.Cosine < recoveryCosine {
		r.NeedsRecovery = true
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"the pruned model's outputs have cosine %.4f to the source's on the calibration samples (below %.2f): recover accuracy with a Distill stage after this one", s.Cosine, recoveryCosine))
	}
	if r.Method == v1alpha1.PruneEntropy {
		r.NeedsRecovery = true
		r.Warnings = append(r.Warnings,
			"entropy pruning ranks channels by how much their activations vary, not by what they contribute, and is meant to be followed by fine-tuning (Luo & Wu retrain after pruning): follow it with a Distill stage (mnist-8 at 25% lost 6.6-9.1 accuracy points before recovery)")
	}
}

// channelOptions checks a spec for structured or entropy and turns it
// into the structured package's options.
func channelOptions(spec v1alpha1.PruneSpec) (structured.Options, error) {
	spec, err := normalizeKeep(spec)
	if err != nil {
		return structured.Options{}, err
	}
	if spec.Pattern != "" {
		return structured.Options{}, specErr("prune.pattern is only used by methods nm and hessian (method %s takes sparsity)", spec.Method)
	}
	if spec.Sparsity == "" {
		return structured.Options{}, specErr("prune.sparsity (or keep), the fraction of channels removed, is required for method %s", spec.Method)
	}
	frac, err := fraction("prune.sparsity", spec.Sparsity, false)
	if err != nil {
		return structured.Options{}, err
	}
	if spec.Storage == v1alpha1.StorageSparse {
		return structured.Options{}, specErr("prune.storage sparse stores zeros compactly; method %s removes channels and leaves no zeros: use dense", spec.Method)
	}
	opts := structured.Options{Fraction: frac, Scope: structured.Scope(spec.Scope), MinParams: spec.MinParams, Seed: spec.Seed,
		Samples: int(spec.CalibrationSamples)}
	if opts.Samples == 0 {
		opts.Samples = defaultSamples
	}
	switch spec.Criterion {
	case "", v1alpha1.CriterionL1:
		opts.Criterion = structured.L1
	case v1alpha1.CriterionL2:
		opts.Criterion = structured.L2
	case v1alpha1.CriterionReconstruction:
		opts.Criterion = structured.Reconstruction
	default:
		return structured.Options{}, specErr("prune.criterion %q is not l1, l2 or reconstruction", spec.Criterion)
	}
	if spec.Method == v1alpha1.PruneEntropy {
		opts.Criterion = structured.Entropy
	}
	switch opts.Scope {
	case "", structured.ScopeLayer, structured.ScopeGlobal, structured.ScopeSensitivity:
	default:
		return structured.Options{}, specErr("prune.scope %q is not layer, global or sensitivity", spec.Scope)
	}
	if spec.MinParams < 0 {
		return structured.Options{}, specErr("prune.minParams is %d, expected 0 or more", spec.MinParams)
	}
	if spec.Exclude != nil {
		opts.ExcludeNodes, opts.ExcludeOpTypes = spec.Exclude.Nodes, spec.Exclude.OpTypes
	}
	return opts, nil
}
