package structured

import (
	"context"
	"fmt"
	"strings"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
)

// Prune removes opts.Fraction of the output channels of the model's Conv,
// ConvTranspose, Gemm and MatMul layers, with everything that depends on
// them, and returns the smaller model (src is not modified) and a report.
//
// The model is run once in ONNX Runtime to learn every tensor's shape (on
// the first calibration sample, or on synthesized inputs), and the pruned
// model is run on the same inputs before it is returned: its outputs must
// keep their shapes.
func Prune(ctx context.Context, src *onnx.Model, opts Options) (*onnx.Model, *Report, error) {
	pr, err := newPruning(ctx, src, opts)
	if err != nil {
		return nil, nil, err
	}
	a := pr.a
	scores, means, samples, err := pr.measure(ctx)
	if err != nil {
		return nil, nil, err
	}
	var p *plan
	var curves []curve
	if pr.opts.Scope == ScopeSensitivity {
		if p, curves, err = pr.allocate(ctx, scores, means); err != nil {
			return nil, nil, err
		}
	} else {
		p = a.decide(scores)
	}
	rep := a.report(p)
	rep.Samples = samples
	for g, c := range curves {
		for i := range c.counts {
			rep.Groups[g].Sensitivity = append(rep.Groups[g].Sensitivity, Point{Removed: c.counts[i], Loss: c.loss[i]})
		}
	}
	if rep.ChannelsAfter == rep.ChannelsBefore {
		return nil, rep, a.nothingRemoved(rep)
	}
	before, err := a.m.Stats()
	if err != nil {
		return nil, nil, err
	}
	if err := a.compensate(p, means); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.m.Name, err)
	}
	if err := a.apply(p); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", a.m.Name, err)
	}
	after, err := a.m.Stats()
	if err != nil {
		return nil, nil, err
	}
	rep.ParamsBefore, rep.ParamsAfter = before.Params, after.Params
	if rep.Cosine, err = pr.fidelity(a.m); err != nil {
		return nil, nil, fmt.Errorf("structured pruning produced a model ONNX Runtime cannot run: %w", err)
	}
	return a.m, rep, nil
}

// measure scores every source's channels and measures the input means of
// the mixing layers that bias correction needs (nil without it). samples
// is how many calibration samples scored the channels (entropy and
// reconstruction; 0 for the weight norms).
func (pr *pruning) measure(ctx context.Context) (scores [][]float64, means map[string][]float64, samples int, err error) {
	a := pr.a
	var mom map[string]*moments
	var momSamples int
	if pr.opts.Criterion == Reconstruction || !pr.opts.NoBiasCorrection {
		if mom, momSamples, err = a.inputMoments(ctx, a.m, pr.inputs); err != nil {
			return nil, nil, 0, err
		}
	}
	if !pr.opts.NoBiasCorrection {
		means = meansOf(mom)
	}
	switch pr.opts.Criterion {
	case Entropy:
		scores, samples, err = a.entropyScores(ctx, a.m)
	case Reconstruction:
		scores, err = a.reconstructionScores(mom)
		samples = momSamples
	default:
		scores, err = a.magnitudeScores()
	}
	return scores, means, samples, err
}

// pruning is a model on its way: the source with its weight reshapes
// folded (m0, never modified), what the probe run showed, and the analysis
// of a copy of m0 that Prune rewrites.
type pruning struct {
	m0     *onnx.Model
	opts   Options
	shapes map[string][]int64
	values map[string]*onnx.Tensor
	// inputs fed the probe run; evals and want are the inputs fidelity
	// is measured on and m0's outputs for them.
	inputs map[string]*onnx.Tensor
	evals  []map[string]*onnx.Tensor
	want   []map[string]*onnx.Tensor
	a      *analysis
}

func newPruning(ctx context.Context, src *onnx.Model, opts Options) (*pruning, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	m := src.Clone()
	if err := onnx.TopoSort(m.Proto.GetGraph()); err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	if !hasCandidates(m) { // say so before running the model to probe its shapes
		return nil, fmt.Errorf("%w: %s has no Conv, ConvTranspose, Gemm or MatMul with a constant weight", ErrNothingPrunable, m.Name)
	}
	pr := &pruning{m0: m, opts: opts}
	if pr.inputs, err = probeInputs(m, opts); err != nil {
		// Input specs naming no input, of the wrong shape, data that
		// does not fit: the same task fails the same way again.
		return nil, fault.BadInput(err)
	}
	if pr.shapes, pr.values, err = probeShapes(m, pr.inputs, opts.Threads); err != nil {
		return nil, fmt.Errorf("structured pruning: running the source model to learn its shapes: %w", err)
	}
	folded, err := foldWeightReshapes(newGraph(m, pr.shapes, pr.values))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	removeUnused(m, folded)
	pr.a = pr.analyze()
	if len(pr.a.sources) == 0 {
		return nil, fmt.Errorf("%w: %s has no Conv, ConvTranspose, Gemm or MatMul with a constant weight", ErrNothingPrunable, m.Name)
	}
	if err := pr.evalInputs(ctx); err != nil {
		return nil, err
	}
	return pr, nil
}

// hasCandidates reports whether the main graph has a layer whose output
// channels could be candidates: a node with a rule and a float layer in
// the operator table (Conv, ConvTranspose, Gemm, MatMul) reading a weight
// where the table puts it.
func hasCandidates(m *onnx.Model) bool {
	weights := map[string]bool{}
	for _, w := range m.Weights() {
		if w.Graph.Path == "" {
			weights[w.Name] = true
		}
	}
	for _, n := range m.Proto.GetGraph().GetNode() {
		if l, ok := onnx.LayerOf(n); ok && !l.Quantized && rules[n.GetOpType()] != nil && weights[input(n, l.Weight)] {
			return true
		}
	}
	return false
}

// analyze builds the channel dependency graph of a fresh copy of m0.
func (pr *pruning) analyze() *analysis {
	a := newAnalysis(newGraph(pr.m0.Clone(), pr.shapes, pr.values), pr.opts)
	a.run()
	return a
}

// magnitudeScores scores every source's channels by the norm of their
// filters (L1 or L2).
func (a *analysis) magnitudeScores() ([][]float64, error) {
	scores := make([][]float64, len(a.sources))
	for i, s := range a.sources {
		var err error
		if scores[i], err = magnitudes(s, a.opts.Criterion); err != nil {
			return nil, err
		}
	}
	return scores, nil
}

// nothingRemoved explains why no channel could go.
func (a *analysis) nothingRemoved(rep *Report) error {
	var why []string
	for _, l := range rep.Layers {
		if l.Protected != "" && len(why) < 5 {
			why = append(why, fmt.Sprintf("%s: %s", l.Node, l.Protected))
		}
	}
	largest := 0
	for _, g := range rep.Groups {
		largest = max(largest, g.Channels-g.Protected)
	}
	msg := fmt.Sprintf("%s: structured pruning at fraction %v removes no channel", a.m.Name, a.opts.Fraction)
	if largest > 0 {
		msg += fmt.Sprintf(" (the largest group has %d removable channels: raise the fraction)", largest)
	}
	if len(why) > 0 {
		msg += "; protected: " + strings.Join(why, "; ")
	}
	return fmt.Errorf("%w: %s", ErrNothingPrunable, msg)
}

// ErrNothingPrunable is wrapped by the errors of a model where no channel
// can be removed: no layer to prune, or every candidate protected or
// below the fraction's share.
var ErrNothingPrunable = fault.New("nothing to prune structurally")

// report describes the plan.
func (a *analysis) report(p *plan) *Report {
	rep := &Report{Criterion: a.opts.Criterion, Scope: a.opts.Scope, Fraction: a.opts.Fraction, Protected: a.protected}
	groupOf := map[int]int{}
	for g, members := range p.groups {
		grp := Group{}
		for _, si := range members {
			groupOf[si] = g
			grp.Layers = append(grp.Layers, a.sources[si].label)
		}
		for _, k := range p.groupClasses[g] {
			grp.Channels++
			if k.removed {
				grp.Removed++
			}
			if k.pin != "" {
				grp.Protected++
			}
		}
		rep.Groups = append(rep.Groups, grp)
	}
	for si, s := range a.sources {
		l := Layer{Node: s.label, OpType: s.node.GetOpType(), Group: groupOf[si], Channels: len(s.ids)}
		for c, id := range s.ids {
			if p.removed(&a.cls, id) {
				l.Removed = append(l.Removed, c)
			} else if r := a.cls.pinned(id); r != "" && l.Protected == "" {
				l.Protected = r
			}
		}
		l.Kept = l.Channels - len(l.Removed)
		rep.ChannelsBefore += l.Channels
		rep.ChannelsAfter += l.Kept
		rep.Layers = append(rep.Layers, l)
	}
	return rep
}
