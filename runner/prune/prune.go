package prune

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/fold"
	"github.com/kompress/kompress/runner/onnx"
)

// calibrationBatch is how many samples one calibration run feeds ONNX
// Runtime when the model's batch dimension is dynamic.
const calibrationBatch = 32

// Prune returns a pruned copy of m as opts ask, and a report of what was
// pruned and what was left dense and why. m is not modified.
//
// data is the job's dataset: hessian calibrates on its first
// opts.CalibrationSamples samples (fed to the model's inputs by
// runner/feed), entropy scores channels on it; the other methods ignore it
// and it may be nil. progress, when not nil, is called with the number of
// layers done and the total.
//
// Errors wrap ErrSpec (the options cannot be applied), ErrNothingPrunable
// (no weight the method can prune) or ErrCalibration (no or unusable
// calibration data): all three are bad input, which retrying cannot fix.
func Prune(ctx context.Context, m *onnx.Model, opts Options, data *dataset.Dataset, progress func(done, total int)) (*onnx.Model, *Report, error) {
	if progress == nil {
		progress = func(int, int) {}
	}
	if opts.channels() {
		return pruneChannels(ctx, m, opts, data, progress)
	}
	o, err := opts.parse()
	if err != nil {
		return nil, nil, err
	}
	var calib Calibration
	if o.method == Hessian {
		if calib, err = calibrationFrom(m, data, o.samples); err != nil {
			return nil, nil, err
		}
	}
	return unstructured(ctx, m, o, calib, progress)
}

// unstructured runs magnitude, nm or hessian.
func unstructured(ctx context.Context, m *onnx.Model, o *options, calib Calibration, progress func(done, total int)) (*onnx.Model, *Report, error) {
	start := time.Now()
	out := m.Clone()
	// Weights computed from constants alone are computed once; chains
	// that only reshape an initializer are followed to it instead
	// (findTargets), which keeps the model as it was written. A tied
	// weight (a head reading the embedding through a Transpose) is left
	// alone: its pruned copy would be stored beside the dense embedding.
	computed, err := fold.WeightsKeepingTied(out, func(ops []string) bool {
		return !slices.ContainsFunc(ops, func(op string) bool {
			return op != "Identity" && op != "Reshape" && op != "Flatten" && op != "Constant"
		})
	})
	if err != nil {
		return nil, nil, err
	}
	targets, skipped := findTargets(out, o)
	for _, c := range computed.Refused {
		s := Skipped{Name: c.Name, Node: c.Node, OpType: c.OpType, Reason: ReasonComputed, Detail: c.Reason}
		if c.Tied != "" {
			s.Reason, s.Detail = ReasonTied, "reads "+c.Tied
		}
		skipped = append(skipped, s)
	}
	if o.method == Hessian {
		targets, skipped = keepCalibratable(out, targets, skipped)
	}
	if len(targets) == 0 {
		return nil, nil, nothingPrunable(m, skipped)
	}
	vals := make([][]float32, len(targets))
	for i, t := range targets {
		if o.method == Hessian {
			break // read by each wave, when it solves the weight
		}
		v, err := t.w.Float32s()
		if err != nil {
			return nil, nil, fmt.Errorf("weight %q: %w", t.w.Name, err)
		}
		vals[i] = v
	}
	report := &Report{Method: o.method, Storage: o.storage, Skipped: skipped, Folded: computed.Folded}
	if o.structured() {
		report.Pattern = fmt.Sprintf("%d:%d", o.n, o.m)
	} else {
		report.Sparsity = o.sparsity
	}
	if o.method == Magnitude {
		report.Scope = o.scope
	}
	layers, err := apply(ctx, out, targets, vals, o, calib, func(done int) { progress(done, len(targets)) }, report)
	if err != nil {
		return nil, nil, err
	}
	stored, err := store(out, targets, o)
	if err != nil {
		return nil, nil, err
	}
	for i, t := range targets {
		l := layers[i]
		if vals[i] != nil { // hessian described its weights as it wrote them
			dig, zeros := zeroPattern(t.w.Dims, vals[i])
			l.Params, l.Zeros, l.MaskDigest = int64(len(vals[i])), int64(zeros), dig
		}
		l.Name, l.Node, l.OpType, l.Shape = t.w.Name, t.nodeName(), t.opType(), append([]int64{}, t.w.Dims...)
		l.Sparsity = float64(l.Zeros) / float64(l.Params)
		l.Stored = Dense
		if stored[t.w.Name] {
			l.Stored = Sparse
		}
		report.Layers = append(report.Layers, l)
		report.Params += l.Params
		report.Zeros += l.Zeros
	}
	report.Achieved = float64(report.Zeros) / float64(report.Params)
	report.Seconds = time.Since(start).Seconds()
	asked := o.sparsity
	if o.structured() {
		asked = 1 - float64(o.n)/float64(o.m)
	}
	report.Warnings = append(report.Warnings, shortfall(out, report, o, asked)...)
	return out, report, nil
}

// apply runs the method on the targets' values and writes them back into
// the model. It returns each target's Layer with what the method knows
// of it (the mask description; N:M's dense remainder; hessian's loss,
// calibration rows, re-fit and bias) and adds hessian's cost and warnings
// to the report.
func apply(ctx context.Context, out *onnx.Model, targets []*target, vals [][]float32, o *options, calib Calibration, step func(done int), report *Report) ([]Layer, error) {
	layers := make([]Layer, len(targets))
	switch o.method {
	case Magnitude:
		for i, mask := range magnitude(vals, o, step) {
			layers[i].Mask = mask
		}
	case NM:
		lays := make([]*layout, len(targets))
		for i, t := range targets {
			lays[i] = t.lay
		}
		masks, dense := nm(vals, lays, o, step)
		for i := range layers {
			layers[i].Mask, layers[i].Dense = masks[i], dense[i]
		}
	case Hessian:
		hl, stats, err := hessian(ctx, out, targets, o, calib, step)
		if err != nil {
			return nil, err
		}
		report.Hessian = stats
		if stats.WholeModel != "" {
			report.Warnings = append(report.Warnings, fmt.Sprintf("hessian pruning ran block by block nowhere: %s (%d passes of the whole model)", stats.WholeModel, stats.Passes))
		}
		for i, h := range hl {
			layers[i] = Layer{Mask: h.mask, Loss: h.loss, CalibrationRows: h.rows, ExactRefit: h.refit, Bias: h.bias,
				Params: h.params, Zeros: h.zeros, MaskDigest: h.maskDigest}
			if h.rows < int64(h.features) {
				report.Warnings = append(report.Warnings, fmt.Sprintf(
					"weight %q: H is %dx%d but built from %d rows of calibration data, so it is singular and only dampening holds the solution: raise prune.calibrationSamples",
					targets[i].w.Name, h.features, h.features, h.rows))
			}
		}
		return layers, nil // hessian wrote each wave back already
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, t := range targets {
		if err := setValues(t.w, vals[i]); err != nil {
			return nil, err
		}
	}
	return layers, nil
}

// keepCalibratable moves the targets whose inputs hessian pruning cannot
// collect to the skipped list.
func keepCalibratable(m *onnx.Model, targets []*target, skipped []Skipped) ([]*target, []Skipped) {
	main := onnx.IndexGraph(m.Proto.GetGraph(), "")
	var keep []*target
	for _, t := range targets {
		if why := calibratable(t, main); why != "" {
			skipped = append(skipped, Skipped{Name: t.w.Name, Node: t.nodeName(), OpType: t.opType(),
				Params: int64(t.w.NumElements()), Reason: ReasonNoCalibration, Detail: why})
			continue
		}
		keep = append(keep, t)
	}
	return keep, skipped
}

// nothingPrunable is the error for a model without a prunable weight,
// with the reasons its weights were left alone.
func nothingPrunable(m *onnx.Model, skipped []Skipped) error {
	if len(skipped) == 0 {
		return fmt.Errorf("%w: model %s has no floating-point weights", ErrNothingPrunable, m.Name)
	}
	by := map[Reason][]string{}
	for _, s := range skipped {
		by[s.Reason] = append(by[s.Reason], s.Name)
	}
	return fmt.Errorf("%w: model %s has no weight to prune (weights of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU and RNN); its %d floating-point weights were left alone: %s",
		ErrNothingPrunable, m.Name, len(skipped), byReasonList(by))
}
