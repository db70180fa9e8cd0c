package quantize

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/fold"
	"github.com/kompress/kompress/runner/onnx"
)

// ErrNoWeights is returned (wrapped, with the details) when a model has no
// weight the method can quantize: the caller reports bad input.
var ErrNoWeights = fault.New("no quantizable weights")

// ErrSpec is returned (wrapped) for Options that cannot be applied.
var ErrSpec = fault.New("invalid quantize spec")

// ErrUnsupported is returned (wrapped) when the model cannot take the
// quantized form: its opset is too old, or an operator cannot be upgraded
// to the opset the form needs. Like ErrNoWeights, it is bad input.
var ErrUnsupported = fault.New("model not supported for this quantization")

// Quantize returns a quantized copy of m as opts ask, and a report of what
// was quantized and what was left in float and why. calib feeds static
// quantization's calibration and 4-bit weight-only's sensitivity guard
// (which synthesizes inputs without it); the other methods ignore it, and
// it may be nil. The input model is not modified.
func Quantize(ctx context.Context, m *onnx.Model, opts Options, calib Calibration) (*onnx.Model, *Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, nil, err
	}
	return QuantizeInPlace(ctx, m.Clone(), opts, calib)
}

// QuantizeInPlace is Quantize without the copy: it rewrites m itself, which
// saves a model's worth of memory when the caller loaded m only to quantize
// it. m must not be used afterwards; the quantized model is the one
// returned.
func QuantizeInPlace(ctx context.Context, m *onnx.Model, opts Options, calib Calibration) (*onnx.Model, *Report, error) {
	o, err := opts.resolve()
	if err != nil {
		return nil, nil, err
	}
	out := m
	r := &Report{Method: o.method, own: map[string]bool{}}
	// Initializers listed as inputs only because IR 3 required it are
	// weights: raising the IR version says so.
	out.RaiseIRVersion(4)
	folded, err := foldConstants(out)
	if err != nil {
		return nil, nil, err
	}
	r.RemovedNodes += folded
	// What the registry does not compute (a ConstantOfShape bias, a
	// weight scaled by a constant) ONNX Runtime computes once.
	computed, err := fold.Weights(out, nil)
	if err != nil {
		return nil, nil, err
	}
	r.Folded = computed.Folded
	for _, c := range computed.Refused {
		r.Float = append(r.Float, FloatTensor{Name: c.Name, Node: c.Node, OpType: c.OpType, Reason: ReasonComputed, Detail: c.Reason})
	}
	fused, err := foldBiases(out)
	if err != nil {
		return nil, nil, err
	}
	r.RemovedNodes += fused
	switch o.method {
	case Static:
		out, err = quantizeStatic(ctx, out, o, calib, r)
	case Dynamic:
		err = quantizeDynamic(out, o, r)
	case WeightOnly:
		err = quantizeWeightOnly(ctx, out, o, calib, r)
	case FP16:
		err = convertFP16(out, o, r)
	}
	if err != nil {
		return nil, r, err
	}
	listFloatWeights(out, r)
	r.Opset = out.Opset("")
	r.Warnings = append(r.Warnings, shortfall(out, r, o)...)
	return out, r, nil
}

// noWeightsError explains why nothing could be quantized.
func noWeightsError(m *onnx.Model, r *Report) error {
	if len(r.Float) == 0 {
		if r.Method == FP16 {
			return fmt.Errorf("%w: %s has no float32 weights to convert", ErrNoWeights, m.Name)
		}
		return fmt.Errorf("%w: %s has no float weights read by Conv, ConvTranspose, MatMul or Gemm", ErrNoWeights, m.Name)
	}
	var why []string
	for _, f := range r.Float {
		why = append(why, fmt.Sprintf("%s (%s %s: %s)", f.Name, f.OpType, f.Node, f.Reason))
		if len(why) == 5 {
			why = append(why, fmt.Sprintf("and %d more", len(r.Float)-5))
			break
		}
	}
	return fmt.Errorf("%w: %s: every candidate weight is left in float: %s", ErrNoWeights, m.Name, strings.Join(why, "; "))
}

// listFloatWeights adds to r every float weight of the output model that
// is not yet accounted for: the quantized forms' own scales aside, each is
// a tensor the method left in float.
func listFloatWeights(m *onnx.Model, r *Report) {
	known := map[string]bool{}
	for _, f := range r.Float {
		known[f.Name] = true
	}
	ix := newIndex(m)
	names := make([]string, 0, len(ix.consts))
	for name := range ix.consts {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		c := ix.consts[name]
		if known[name] || r.own[name] || !onnx.IsFloat(c.dtype()) {
			continue
		}
		if r.Method == FP16 && c.dtype() != onnx.Float {
			continue // float16 is what fp16 writes; only float32 stayed behind
		}
		readers := ix.uses[name]
		var first *use
		if len(readers) > 0 {
			first = &readers[0]
		}
		reason := ReasonNotWeight
		if first != nil {
			_, l, ok := weightLayer(first.node)
			switch {
			case !ok:
				reason = ReasonUnsupportedOp
			case first.input == l.Bias:
				reason = ReasonBias
			}
		}
		detail := fmt.Sprintf("%v %v", c.dtype(), c.dims())
		if first != nil {
			detail = fmt.Sprintf("input %d of %s, %s", first.input, first.node.GetOpType(), detail)
		}
		r.addFloat(name, first, reason, detail)
	}
}
