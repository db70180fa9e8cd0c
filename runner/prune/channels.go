package prune

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/prune/structured"
)

// pruneChannels runs the structured methods (structured: channels scored
// by the L1 or L2 norm of their filters; entropy: by the entropy of their
// activations), which package runner/prune/structured implements. The
// options are checked here so that their mistakes are ErrSpec like the
// other methods'.
func pruneChannels(ctx context.Context, m *onnx.Model, o Options, data *dataset.Dataset, progress func(done, total int)) (*onnx.Model, *Report, error) {
	start := time.Now()
	opts, err := channelOptions(o)
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
		Method: o.Method, Sparsity: opts.Fraction, Scope: Scope(rep.Scope), Storage: Dense,
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
	if r.Method == Entropy {
		r.NeedsRecovery = true
		r.Warnings = append(r.Warnings,
			"entropy pruning ranks channels by how much their activations vary, not by what they contribute, and is meant to be followed by fine-tuning (Luo & Wu retrain after pruning): follow it with a Distill stage (mnist-8 at 25% lost 6.6-9.1 accuracy points before recovery)")
	}
}

// channelOptions checks the options of structured or entropy and turns
// them into the structured package's.
func channelOptions(o Options) (structured.Options, error) {
	if err := o.check(); err != nil {
		return structured.Options{}, err
	}
	if !o.Pattern.IsZero() {
		return structured.Options{}, specErr("prune.pattern is only used by methods nm and hessian (method %s takes sparsity)", o.Method)
	}
	if o.Sparsity == 0 {
		return structured.Options{}, specErr("prune.sparsity, the fraction of channels removed, is required for method %s", o.Method)
	}
	if o.Storage == Sparse {
		return structured.Options{}, specErr("prune.storage sparse stores zeros compactly; method %s removes channels and leaves no zeros: use dense", o.Method)
	}
	opts := structured.Options{Fraction: o.Sparsity, Scope: structured.Scope(o.Scope), Criterion: o.Criterion,
		MinParams: o.MinParams, Seed: o.Seed, Samples: o.CalibrationSamples,
		ExcludeNodes: o.ExcludeNodes, ExcludeOpTypes: o.ExcludeOpTypes, Inputs: o.Inputs}
	if o.Inputs != nil {
		opts.InputsField = "evaluation.inputs" // the job's spec gives them
	}
	if opts.Samples == 0 {
		opts.Samples = DefaultCalibrationSamples
	}
	if opts.Criterion == "" {
		opts.Criterion = structured.L1
	}
	if o.Method == Entropy {
		opts.Criterion = structured.Entropy
	}
	return opts, nil
}
