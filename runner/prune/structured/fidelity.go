package structured

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// evalSamples is how many calibration samples fidelity is measured on.
const evalSamples = 4

// evalInputs chooses the inputs fidelity is measured on (the first
// calibration samples, one per run, or the probe inputs) and runs m0 on
// them.
func (pr *pruning) evalInputs(ctx context.Context) error {
	pr.evals = []map[string]*onnx.Tensor{pr.inputs}
	if pr.opts.Calibration != nil {
		d, err := calibrationData(pr.m0, pr.opts.Calibration)
		if err != nil {
			return err
		}
		n, _, err := feed.BatchSize(1, 0, d)
		if err != nil {
			return fmt.Errorf("%s: calibration data: %w", pr.m0.Name, err)
		}
		pr.evals = nil
		for _, sp := range feed.Plan(min(d.Len(), evalSamples*n), n, true, feed.Drop) {
			in, err := d.Tensors(sp.Samples())
			if err != nil {
				return err
			}
			pr.evals = append(pr.evals, in)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var err error
	pr.want, err = runEach(pr.m0, pr.evals, pr.opts.Threads)
	return err
}

// fidelity runs m on the evaluation inputs and returns the mean over them
// of the smallest cosine similarity between one of m's outputs and m0's
// (each flattened). An output whose shape changed is an error.
func (pr *pruning) fidelity(m *onnx.Model) (float64, error) {
	outs, err := runEach(m, pr.evals, pr.opts.Threads)
	if err != nil {
		return 0, err
	}
	total := 0.0
	for i, out := range outs {
		worst := 1.0
		for name, want := range pr.want[i] {
			got := out[name]
			if got == nil || !slices.Equal(got.Dims, want.Dims) {
				return 0, fmt.Errorf("output %q of %s has shape %v, the source's %v", name, m.Name, dimsOrNil(got), want.Dims)
			}
			c, err := cosine(got, want)
			if err != nil {
				return 0, fmt.Errorf("output %q: %w", name, err)
			}
			worst = math.Min(worst, c)
		}
		total += worst
	}
	return total / float64(len(pr.evals)), nil
}

// cosine is the cosine similarity of two tensors' values; two all-zero
// tensors count as 1, one as 0.
func cosine(a, b *onnx.Tensor) (float64, error) {
	av, err := a.Float32s()
	if err != nil {
		return 0, err
	}
	bv, err := b.Float32s()
	if err != nil {
		return 0, err
	}
	return compare.Cosine(av, bv), nil
}

func dimsOrNil(t *onnx.Tensor) []int64 {
	if t == nil {
		return nil
	}
	return t.Dims
}
