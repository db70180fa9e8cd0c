package structured

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
)

// moments are the first two moments of each position along a tensor's
// channel axis, over the calibration samples (or the probe inputs) and
// every other axis.
type moments struct {
	mean, meanSq []float64
}

// variance of position q.
func (m *moments) variance(q int) float64 {
	return max(m.meanSq[q]-m.mean[q]*m.mean[q], 0)
}

// inputMoments measures, for the input of every layer that mixes tracked
// channels, the moments of each position along its channel axis: over the
// calibration samples when there are any, else on the probe inputs, and
// how many calibration samples it ran. Bias correction reads the means,
// the reconstruction criterion both.
func (a *analysis) inputMoments(ctx context.Context, m *onnx.Model, probe map[string]*onnx.Tensor) (map[string]*moments, int, error) {
	axes := map[string]int{}
	var names []string
	for _, e := range a.edits {
		x := input(e.node, 0)
		if _, seen := axes[x]; e.mixing && !seen {
			axes[x] = a.lay[x].axis
			names = append(names, x)
		}
	}
	if len(names) == 0 {
		return nil, 0, nil
	}
	sums := map[string]*moments{}
	counts := map[string]int{}
	add := func(out map[string]*onnx.Tensor) error {
		for _, x := range names {
			n, err := addMoments(out[x], axes[x], sums, x)
			if err != nil {
				return fmt.Errorf("tensor %q: %w", x, err)
			}
			counts[x] += n
		}
		return nil
	}
	samples := 0
	if a.opts.Calibration != nil {
		var err error
		if samples, err = a.calibrate(ctx, m, names, nil, add); err != nil {
			return nil, 0, err
		}
	} else {
		out, err := runExposed(m, names, probe, a.opts.Threads)
		if err != nil {
			return nil, 0, err
		}
		if err := add(out); err != nil {
			return nil, 0, err
		}
	}
	for x, s := range sums {
		for q := range s.mean {
			s.mean[q] /= float64(counts[x])
			s.meanSq[q] /= float64(counts[x])
		}
	}
	return sums, samples, nil
}

// addMoments adds t's values and squares, per position along axis, to
// sums[name], and returns how many values each position got.
func addMoments(t *onnx.Tensor, axis int, sums map[string]*moments, name string) (int, error) {
	vals, err := t.Float32s()
	if err != nil {
		return 0, err
	}
	if axis >= len(t.Dims) {
		return 0, fmt.Errorf("shape %v has no axis %d", t.Dims, axis)
	}
	outer, size, inner := int(prod(t.Dims[:axis])), int(t.Dims[axis]), int(prod(t.Dims[axis+1:]))
	s := sums[name]
	if s == nil {
		s = &moments{mean: make([]float64, size), meanSq: make([]float64, size)}
		sums[name] = s
	}
	if len(s.mean) != size {
		return 0, fmt.Errorf("shape %v has %d positions on axis %d, earlier batches %d", t.Dims, size, axis, len(s.mean))
	}
	for o := range outer {
		for q := range size {
			var sum, sq float64
			for _, v := range vals[(o*size+q)*inner : (o*size+q+1)*inner] {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			s.mean[q] += sum
			s.meanSq[q] += sq
		}
	}
	return outer * inner, nil
}

// meansOf returns the means of the moments, by tensor.
func meansOf(mom map[string]*moments) map[string][]float64 {
	if mom == nil {
		return nil
	}
	means := map[string][]float64{}
	for x, m := range mom {
		means[x] = m.mean
	}
	return means
}
