package quantize

import (
	"context"
	"fmt"
	"math"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// SmoothQuant (Xiao et al., "SmoothQuant", 2022) migrates the outlier
// channels of a linear layer's input into its weight before static int8
// quantization: trained transformers carry a few input channels 20-100x
// larger than the rest, in the same channels for every token, so one
// per-tensor activation scale leaves the other channels a handful of
// levels. Per input channel j of a MatMul or Gemm,
//
//	s_j = max|X_j|^α / max|W_j|^(1-α)
//
// from the calibration data (max|W_j| over every layer reading X), then
// X/s feeds the layer and W is multiplied by s row by row: X·W is
// unchanged, and the activation's range is shared with the weight, whose
// per-channel scales take it better. The division is folded into the
// producer of X when that is exact (a LayerNormalization's scale and
// bias, a Mul by a constant) and X has no other reader; otherwise a Mul
// by 1/s is inserted before the layers, as ONNX Runtime's and Intel
// Neural Compressor's smooth_quant.py do. The normal static calibration
// then runs on the migrated model.

// SmoothQuantOptions configure SmoothQuant.
type SmoothQuantOptions struct {
	// Alpha in (0, 1] is how much of the activation's range moves into
	// the weight; default DefaultSmoothQuantAlpha, the paper's choice for
	// most models.
	Alpha float64
	// Auto searches each activation's alpha instead (smoothquant_auto.go);
	// Alpha is then unused.
	Auto bool
}

// DefaultSmoothQuantAlpha is SmoothQuant's migration strength by default.
const DefaultSmoothQuantAlpha = 0.5

// smoothFloor bounds scales and weight powers from below, as
// smooth_quant.py clips them, so a channel of near-zero weights cannot
// blow its input up.
const smoothFloor = 1e-5

// SmoothQuantReport says where SmoothQuant migrated activation ranges and
// where it did not.
type SmoothQuantReport struct {
	// Alpha is the one alpha used, or 0 with Auto, where each
	// SmoothedInput says its own.
	Alpha              float64
	Auto               bool `json:",omitempty"`
	CalibrationSamples int
	// Smoothed lists each activation divided by its scales.
	Smoothed []SmoothedInput
	// Skipped lists the layers with a weight whose input was left as it
	// was, and why.
	Skipped []SmoothSkipped `json:",omitempty"`
}

// SmoothedInput is one activation SmoothQuant divided by s.
type SmoothedInput struct {
	// Tensor is the activation; Layers the MatMul/Gemm nodes reading it,
	// whose weights were multiplied by s.
	Tensor string
	Layers []string
	// Into says where 1/s went: "LayerNormalization NODE" (its scale and
	// bias), "Mul NODE" (its constant), or "inserted Mul NODE" with why
	// the producer could not take it.
	Into     string
	Channels int
	Alpha    float64
	// AutoError and UnmigratedError are, with Auto, the summed relative
	// output error of the layers quantized (on the sampled rows) with the
	// chosen alpha and with no migration.
	AutoError, UnmigratedError float64 `json:",omitempty"`
	// OutlierRatio is the largest channel's absolute maximum over the
	// median channel's, on the calibration data, before and after.
	OutlierRatio, SmoothedRatio float64
}

// SmoothSkipped is a layer whose input SmoothQuant left as it was.
type SmoothSkipped struct {
	Node, OpType, Weight string
	Reason               string
}

// smoothLayer is a MatMul or Gemm whose weight takes s.
type smoothLayer struct {
	node   *onnxpb.NodeProto
	weight *constant
	// transB: the weight is [N, K] (Gemm transB), input channels along
	// its columns.
	transB bool
}

// channels is the layer's number of input channels K.
func (l smoothLayer) channels() int {
	d := l.weight.dims()
	if l.transB {
		return int(d[1])
	}
	return int(d[0])
}

// Smooth applies SmoothQuant to m in place with the activation maxima of
// up to samples calibration samples: the float model computes the same
// function afterwards, with its outlier channels moved into the weights.
func Smooth(ctx context.Context, m *onnx.Model, opts SmoothQuantOptions, samples int, calib Calibration) (*SmoothQuantReport, error) {
	o, err := Options{Method: Static, SmoothQuant: &opts, Calibration: CalibrationOptions{Samples: samples}}.resolve()
	if err != nil {
		return nil, err
	}
	return smoothQuant(ctx, m, o, calib)
}

func smoothQuant(ctx context.Context, m *onnx.Model, o *options, calib Calibration) (*SmoothQuantReport, error) {
	ix := newIndex(m)
	r := &SmoothQuantReport{Alpha: o.smooth.Alpha, Auto: o.smooth.Auto}
	if r.Auto {
		r.Alpha = 0
	}
	groups, order := smoothCandidates(ix, o, r)
	if len(order) == 0 {
		return r, nil
	}
	maxima := channelMaxima{cols: map[string]int{}, max: map[string][]float32{}}
	if r.Auto {
		maxima.rows = map[string]*rowSampler{}
	}
	for _, x := range order {
		maxima.cols[x] = groups[x][0].channels()
		if r.Auto {
			maxima.rows[x] = &rowSampler{}
		}
	}
	cal, err := calibrate(ctx, m, order, calib, maxima, o.calib.Samples)
	if err != nil {
		return nil, fmt.Errorf("smoothQuant: %w", err)
	}
	r.CalibrationSamples = cal.samples
	e := newEditor(ix, nil)
	for _, x := range order {
		choice := alphaChoice{alpha: o.smooth.Alpha}
		if r.Auto {
			if choice, err = chooseAlpha(groups[x], maxima.max[x], maxima.rows[x].rows, o.perChannel); err != nil {
				return nil, fmt.Errorf("smoothQuant: input %q: %w", x, err)
			}
			if choice.alpha == 0 {
				skipUnhelped(r, groups[x], choice)
				continue
			}
		}
		in, err := smoothInput(e, ix, x, groups[x], maxima.max[x], choice.alpha)
		if err != nil {
			return nil, err
		}
		in.AutoError, in.UnmigratedError = choice.err, choice.errNoSmooth
		r.Smoothed = append(r.Smoothed, *in)
	}
	e.apply()
	removeDeadConstants(m)
	return r, nil
}

// smoothInput migrates the range of activation x, of channel maxima
// xmax, into the weights of the layers reading it.
func smoothInput(e *editor, ix *index, x string, layers []smoothLayer, xmax []float32, alpha float64) (*SmoothedInput, error) {
	s, err := smoothScales(xmax, layers, alpha)
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		if err := scaleWeight(l, s); err != nil {
			return nil, err
		}
	}
	into, err := divideInput(e, ix, x, layers, s)
	if err != nil {
		return nil, err
	}
	in := &SmoothedInput{Tensor: x, Into: into, Channels: len(s), Alpha: alpha, OutlierRatio: outlierRatio(xmax, nil), SmoothedRatio: outlierRatio(xmax, s)}
	for _, l := range layers {
		in.Layers = append(in.Layers, onnx.Label(l.node))
	}
	return in, nil
}

// smoothCandidates groups the main graph's MatMul and Gemm layers of a
// constant 2-D weight by the activation they read, in graph order, and
// lists in r the layers with a weight that cannot take s.
func smoothCandidates(ix *index, o *options, r *SmoothQuantReport) (map[string][]smoothLayer, []string) {
	groups := map[string][]smoothLayer{}
	var order []string
	for _, n := range ix.model.Proto.GetGraph().GetNode() {
		isMatMul := n.GetOpType() == "MatMul" && len(n.GetInput()) == 2
		if !onnx.IsDefaultDomain(n.GetDomain()) || (!isMatMul && n.GetOpType() != "Gemm") || len(n.GetInput()) < 2 {
			continue
		}
		x, w := n.GetInput()[0], ix.consts[n.GetInput()[1]]
		if w == nil || ix.consts[x] != nil {
			continue // no weight to migrate into, or nothing computed
		}
		l := smoothLayer{node: n, weight: w, transB: !isMatMul && onnx.IntAttr(n, "transB", 0) != 0}
		if reason := smoothRefusal(ix, o, l); reason != "" {
			r.Skipped = append(r.Skipped, SmoothSkipped{Node: onnx.Label(n), OpType: n.GetOpType(), Weight: w.name, Reason: reason})
			continue
		}
		if len(groups[x]) > 0 && groups[x][0].channels() != l.channels() {
			r.Skipped = append(r.Skipped, SmoothSkipped{Node: onnx.Label(n), OpType: n.GetOpType(), Weight: w.name,
				Reason: "its input is read by layers of different input channels"})
			continue
		}
		if groups[x] == nil {
			order = append(order, x)
		}
		groups[x] = append(groups[x], l)
	}
	return groups, order
}

// smoothRefusal says why a layer's weight cannot take s exactly, or "".
func smoothRefusal(ix *index, o *options, l smoothLayer) string {
	n, w := l.node, l.weight
	switch {
	case o.excluded(n.GetOpType(), n.GetName()) != "":
		return "excluded: stays in float"
	case w.dtype() != onnx.Float:
		return "weight is not float32"
	case len(w.dims()) != 2:
		return fmt.Sprintf("weight %v is not 2-D", w.dims())
	case n.GetOpType() == "Gemm" && onnx.IntAttr(n, "transA", 0) != 0:
		return "Gemm with transA: its input channels are not the last axis"
	case len(ix.uses[w.name]) != 1 || w.overridable || ix.outputs[w.name]:
		return "weight also read elsewhere: scaling it would change the other reader"
	case ix.graphOf[n] != ix.model.Proto.GetGraph():
		return "inside a subgraph, where activations cannot be calibrated"
	}
	return ""
}

// channelMaxima keeps the largest absolute value of each channel (the
// last axis) of the calibrated tensors.
type channelMaxima struct {
	cols map[string]int
	max  map[string][]float32
	// rows, with alpha auto, samples each tensor's rows for the search.
	rows map[string]*rowSampler
}

func (c channelMaxima) Collect(name string, data []float32) {
	k := c.cols[name]
	m := c.max[name]
	if m == nil {
		m = make([]float32, k)
		c.max[name] = m
	}
	for i, x := range data {
		if a := float32(math.Abs(float64(x))); a > m[i%k] && isFinite32(x) {
			m[i%k] = a
		}
	}
	if c.rows != nil {
		c.rows[name].add(data, k)
	}
}

func (c channelMaxima) Ranges() map[string]Range { return nil }

// smoothScales computes s_j = max|X_j|^α / max|W_j|^(1-α) over the
// layers' weights; a channel never seen active (or of zero weights) keeps
// s_j = 1.
func smoothScales(xmax []float32, layers []smoothLayer, alpha float64) ([]float32, error) {
	k := layers[0].channels()
	if len(xmax) != k {
		return nil, fmt.Errorf("smoothQuant: input %q of %s: calibrated %d channels, the weight has %d", layers[0].node.GetInput()[0], onnx.Label(layers[0].node), len(xmax), k)
	}
	wmax := make([]float64, k)
	for _, l := range layers {
		w, err := floatData(l.weight)
		if err != nil {
			return nil, fmt.Errorf("smoothQuant: weight %q: %w", l.weight.name, err)
		}
		for i, v := range w {
			j := l.row(i)
			wmax[j] = max(wmax[j], math.Abs(float64(v)))
		}
	}
	s := make([]float32, k)
	for j := range s {
		s[j] = 1
		if xmax[j] > 0 && wmax[j] > 0 {
			wp := max(math.Pow(wmax[j], 1-alpha), smoothFloor)
			s[j] = float32(max(math.Pow(float64(xmax[j]), alpha)/wp, smoothFloor))
		}
	}
	return s, nil
}

// row is the input channel of the weight's i-th value (row-major).
func (l smoothLayer) row(i int) int {
	cols := int(l.weight.dims()[1])
	if l.transB {
		return i % cols
	}
	return i / cols
}

// scaleWeight multiplies each input channel j of the layer's weight by s_j.
func scaleWeight(l smoothLayer, s []float32) error {
	w, err := floatData(l.weight)
	if err != nil {
		return fmt.Errorf("smoothQuant: weight %q: %w", l.weight.name, err)
	}
	for i := range w {
		w[i] *= s[l.row(i)]
	}
	return l.weight.w.Set(onnx.NewTensor(append([]int64{}, l.weight.dims()...), w))
}

// divideInput makes the layers read x/s: folded into x's producer when
// that is exact, else through an inserted Mul. It says which.
func divideInput(e *editor, ix *index, x string, layers []smoothLayer, s []float32) (string, error) {
	p := ix.producer[x]
	why := "x is a graph input"
	if p != nil {
		folded, reason, err := foldDivision(e, ix, p, x, len(layers), s)
		if err != nil || folded {
			return p.GetOpType() + " " + onnx.Label(p), err
		}
		why = reason
	}
	inv := make([]float32, len(s))
	for j, v := range s {
		inv[j] = 1 / v
	}
	scale, err := e.addInit(ix.model.Proto.GetGraph(), x+"_smooth_scale", onnx.NewTensor([]int64{int64(len(s))}, inv))
	if err != nil {
		return "", err
	}
	out := ix.fresh(x + "_smoothed")
	mul := newNode("Mul", "", ix.fresh(x+"_smooth_Mul"), []string{x, scale}, []string{out})
	e.insertBefore(layers[0].node, mul)
	for _, l := range layers {
		l.node.Input[0] = out
	}
	return fmt.Sprintf("inserted Mul %s (%s)", mul.GetName(), why), nil
}

// foldDivision divides the output of p (a LayerNormalization over the
// last axis, or a Mul by a constant) by s channel by channel through its
// constants, when x is p's only output and the layers its only readers.
func foldDivision(e *editor, ix *index, p *onnxpb.NodeProto, x string, readers int, s []float32) (bool, string, error) {
	if len(ix.uses[x]) != readers || ix.outputs[x] {
		return false, "x has readers other than the layers", nil
	}
	if !onnx.IsDefaultDomain(p.GetDomain()) || ix.graphOf[p] != ix.model.Proto.GetGraph() {
		return false, p.GetOpType() + " cannot take the scale", nil
	}
	var inputs []int
	switch p.GetOpType() {
	case "LayerNormalization":
		if onnx.IntAttr(p, "axis", -1) != -1 || len(p.GetOutput()) > 1 && p.GetOutput()[1] != "" {
			return false, "LayerNormalization not over the last axis alone", nil
		}
		inputs = []int{1, 2}
	case "Mul":
		for i := range 2 {
			if ix.floatConst(input(p, i)) != nil && ix.consts[input(p, 1-i)] == nil {
				inputs = []int{i}
			}
		}
	}
	if len(inputs) == 0 {
		return false, p.GetOpType() + " cannot take the scale", nil
	}
	for _, i := range inputs {
		if input(p, i) != "" && !perChannelConst(ix.floatConst(input(p, i)), len(s)) {
			return false, fmt.Sprintf("input %d of %s is not a float constant of one or %d values along the last axis", i, p.GetOpType(), len(s)), nil
		}
	}
	for _, i := range inputs {
		if input(p, i) == "" {
			continue
		}
		if err := divideConst(e, ix, p, i, s); err != nil {
			return false, "", err
		}
	}
	return true, "", nil
}

// perChannelConst says whether c holds one value or one per channel
// along its last axis (every other dimension 1).
func perChannelConst(c *constant, k int) bool {
	if c == nil {
		return false
	}
	d := c.dims()
	n := onnx.NumElements(d)
	if n != 1 && (n != k || d[len(d)-1] != int64(k)) {
		return false
	}
	return true
}

// divideConst writes input i of p divided by s, one value per channel:
// in place when p alone reads it, as a new initializer otherwise.
func divideConst(e *editor, ix *index, p *onnxpb.NodeProto, i int, s []float32) error {
	c := ix.floatConst(input(p, i))
	v, err := floatData(c)
	if err != nil {
		return fmt.Errorf("smoothQuant: %q: %w", c.name, err)
	}
	out := make([]float32, len(s))
	for j := range out {
		out[j] = v[min(j, len(v)-1)] / s[j]
	}
	dims := slices.Clone(c.dims())
	if len(dims) == 0 {
		dims = []int64{1}
	}
	dims[len(dims)-1] = int64(len(s))
	t := onnx.NewTensor(dims, out)
	if len(ix.uses[c.name]) == 1 && !c.overridable && !ix.outputs[c.name] {
		return c.w.Set(t)
	}
	name, err := e.addInit(c.graph, c.name+"_smoothed", t)
	if err != nil {
		return err
	}
	p.Input[i] = name
	return nil
}

// outlierRatio is the largest channel maximum over the median one, of
// xmax divided by s (nil: as it is).
func outlierRatio(xmax, s []float32) float64 {
	v := make([]float64, len(xmax))
	for j, x := range xmax {
		v[j] = float64(x)
		if s != nil {
			v[j] /= float64(s[j])
		}
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if med == 0 {
		return 0
	}
	return v[len(v)-1] / med
}
