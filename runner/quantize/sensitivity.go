package quantize

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// The 4-bit guard. Sixteen levels per block are too few for some weights:
// a network's first convolution (a few input channels, a wide dynamic
// range) or its classifier carry the model, and 4-bit weight-only
// quantization of a CNN that treats them like the others destroys it.
// The guard measures, on the calibration data (synthesized inputs
// without it), the output cosine with each weight alone at 4 bits; then,
// most sensitive first, keeps the fewest at 8 bits (or in float) that
// hold the output cosine at fidelityTarget (or within fidelitySlack of
// what 8 bits everywhere allow, when that is lower), as static
// quantization's search does for nodes computed in float.
//
// Measuring needs no quantized model: weight-only computes in float on
// the dequantized weights, so one session of the model with those
// weights as graph inputs runs every configuration, each fed the
// dequantized values it would have. A model that holds the target with
// every weight at 4 bits costs two passes over the samples; one that
// does not, one per weight and about ten more (ppocr-det: 53 weights, 25
// s on two cores for 4 images of 640x640).

// guardSamples are the samples the guard measures on (in batches of
// guardBatch when the model's batch dimension is free).
const (
	guardSamples = 32
	guardBatch   = 16
)

// lowBit is a weight the guard decides for: its float values, and the
// values it computes with at 4 bits and at the precision the guard keeps.
type lowBit struct {
	slot             weightSlot
	dims             []int64
	float, low, high []float32
	cosine           float64
}

func guardLowBit(ctx context.Context, m *onnx.Model, slots []weightSlot, o *options, calib Calibration, r *Report) (map[string]bool, error) {
	var cands []*lowBit
	seen := map[string]bool{}
	ix := newIndex(m)
	for _, s := range slots {
		if seen[s.weight.name] {
			continue
		}
		seen[s.weight.name] = true
		c, err := newLowBit(ix, s, o)
		if err != nil {
			return nil, err
		}
		if c != nil {
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		return map[string]bool{}, nil
	}
	held, samples, err := guardData(m, calib)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, c := range cands {
		names[c.slot.weight.name] = true
	}
	probe, err := weightsAsInputs(m, names)
	if err != nil {
		return nil, err
	}
	sess, err := feed.Open(probe, feed.Options{Name: m.Name + " (4-bit sensitivity)"})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	run := func(values func(i int) []float32) ([]map[string]*onnx.Tensor, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var outs []map[string]*onnx.Tensor
		for _, b := range held {
			in := make(map[string]*onnx.Tensor, len(b)+len(cands))
			for k, v := range b {
				in[k] = v
			}
			for i, c := range cands {
				in[c.slot.weight.name] = onnx.NewTensor(c.dims, values(i))
			}
			out, err := sess.Run(in)
			if err != nil {
				return nil, err
			}
			outs = append(outs, out)
		}
		return outs, nil
	}
	ref, err := run(func(i int) []float32 { return cands[i].float })
	if err != nil {
		return nil, err
	}
	fidelity := func(values func(i int) []float32) (float64, error) {
		got, err := run(values)
		if err != nil {
			return 0, err
		}
		return meanCosine(ref, got), nil
	}
	// Most models take 4 bits everywhere: then nothing is kept, after
	// two passes.
	order := make([]int, len(cands))
	for i := range order {
		order[i] = i
	}
	keptFirst := func(k int) func(i int) []float32 {
		kept := map[int]bool{}
		for _, i := range order[:k] {
			kept[i] = true
		}
		return func(i int) []float32 {
			if kept[i] {
				return cands[i].high
			}
			return cands[i].low
		}
	}
	if r.LowBitFidelity, err = fidelity(keptFirst(0)); err != nil {
		return nil, err
	}
	r.CalibrationSamples = samples
	if r.LowBitFidelity >= fidelityTarget {
		r.Fidelity = r.LowBitFidelity
		return map[string]bool{}, nil
	}
	for i, c := range cands {
		if c.cosine, err = fidelity(func(j int) []float32 {
			if j == i {
				return cands[j].low
			}
			return cands[j].float
		}); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return cands[order[a]].cosine < cands[order[b]].cosine })
	_, fid, k, err := fewest(len(cands), func(k int) (struct{}, float64, error) {
		if k == 0 {
			return struct{}{}, r.LowBitFidelity, nil
		}
		f, err := fidelity(keptFirst(k))
		return struct{}{}, f, err
	})
	if err != nil {
		return nil, err
	}
	r.Fidelity = fid
	kept := map[string]bool{}
	keptElems, allElems := 0, 0
	for _, c := range cands {
		allElems += len(c.float)
	}
	for _, i := range order[:k] {
		c := cands[i]
		kept[c.slot.weight.name] = true
		keptElems += len(c.float)
		r.Sensitive = append(r.Sensitive, SensitiveWeight{
			Name: c.slot.weight.name, Node: onnx.Label(c.slot.node), OpType: c.slot.node.GetOpType(),
			Kept: o.sensitive, Elements: len(c.float), Cosine: c.cosine,
		})
	}
	if k > 0 {
		var named []string
		for _, s := range r.Sensitive[:min(3, len(r.Sensitive))] {
			named = append(named, fmt.Sprintf("%s (%s, cosine %.3f alone at 4 bits)", s.Name, s.OpType, s.Cosine))
		}
		if len(r.Sensitive) > 3 {
			named = append(named, fmt.Sprintf("and %d more", len(r.Sensitive)-3))
		}
		precision := "at 8 bits"
		if o.sensitive == SensitiveFloat {
			precision = "in float"
		}
		r.Warnings = append(r.Warnings, fmt.Sprintf(
			"quantize.bits 4: %d of %d weights (%.1f%% of their elements) kept %s, their 4-bit error costing the most output fidelity: %s; output cosine %.4f on %d samples, %.4f with every weight at 4 bits (quantize.sensitiveLayers: int4 quantizes them too)",
			k, len(cands), 100*float64(keptElems)/float64(allElems), precision, strings.Join(named, ", "), fid, samples, r.LowBitFidelity))
	}
	return kept, nil
}

// newLowBit dequantizes a slot's weight as the writer would store it, at
// 4 bits and at the guard's precision; nil when the writer leaves it in
// float anyway (too small for 4-bit blocks, no form, not finite).
func newLowBit(ix *index, s weightSlot, o *options) (*lowBit, error) {
	data, err := floatData(s.weight)
	if err == errNotFinite {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c := &lowBit{slot: s, dims: s.weight.dims(), float: data}
	at := func(bits int) ([]float32, error) {
		if o.format == MatMulNBits && !embedding(s) {
			return nbitsValues(ix, s, o, data, bits)
		}
		return blockedValues(s, o, data, bits)
	}
	if c.low, err = at(4); err != nil || c.low == nil {
		return nil, err
	}
	c.high = data
	if o.sensitive == SensitiveInt8 {
		if c.high, err = at(8); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// blockedValues are what DequantizeLinear computes from the weight's
// blocks of bits bits (blockedDQ), or nil when it writes none.
func blockedValues(s weightSlot, o *options, data []float32, bits int) ([]float32, error) {
	if !quantizerOf(s.node).blocked() {
		return nil, nil
	}
	shape, axis := matrixView(s.layer, s.weight.dims())
	if bits == 4 && shape[axis] < minBlockRow {
		return nil, nil
	}
	if embedding(s) && bits == 8 {
		q, err := PerAxis(data, shape, 1, o.blockType(8), o.symmetric)
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
		}
		return q.Dequantize(), nil
	}
	q, err := Blocked(data, shape, axis, o.blockSize, o.blockType(bits), o.symmetric)
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	return q.Dequantize(), nil
}

// nbitsValues are the weight MatMulNBits multiplies by (matMulNBits), in
// the weight's own layout, or nil when it writes none.
func nbitsValues(ix *index, s weightSlot, o *options, data []float32, bits int) ([]float32, error) {
	if _, reason, _, err := quantizerOf(s.node).nbits(nil, ix, s); err != nil || reason != "" {
		return nil, err
	}
	dims := s.weight.dims()
	out, in, _ := s.layer.WeightAxes(len(dims))
	k, n := int(dims[in]), int(dims[out])
	if bits == 4 && k < minBlockRow {
		return nil, nil
	}
	transposed := in == 1
	w, err := MatMulNBitsWeight(data, k, n, transposed, bits, o.blockSize, o.symmetric)
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	v := w.Dequantize() // [K, N]
	if !transposed {
		return v, nil
	}
	t := make([]float32, len(v))
	for i := range k {
		for j := range n {
			t[j*k+i] = v[i*n+j]
		}
	}
	return t, nil
}

// guardData holds the samples the guard measures on: the calibration
// data's first, or synthesized inputs when there is none.
func guardData(m *onnx.Model, calib Calibration) ([]map[string]*onnx.Tensor, int, error) {
	ins := feed.Inputs(m)
	if calib == nil {
		d, err := feed.Synthesize(ins, feed.Synth{Samples: guardSamples, Field: "the 4-bit guard's inputs"})
		if err != nil {
			return nil, 0, fmt.Errorf("quantize.sensitiveLayers measures on the job's dataset, and without one on synthesized inputs: %w", err)
		}
		if calib, err = d.Batches(guardBatch); err != nil {
			return nil, 0, err
		}
	}
	held, samples, err := feed.Collect(ins, calib, guardSamples)
	if err != nil {
		return nil, 0, fmt.Errorf("quantize.sensitiveLayers: %w", err)
	}
	return held, samples, nil
}

// weightsAsInputs returns a copy of m whose named weights are main-graph
// inputs instead of constants (subgraphs read them from the outer scope).
func weightsAsInputs(m *onnx.Model, names map[string]bool) (*onnx.Model, error) {
	p := m.Clone()
	main := p.Proto.GetGraph()
	for _, w := range p.Weights() {
		if !names[w.Name] {
			continue
		}
		g := w.Graph.Graph
		switch w.Kind {
		case onnx.KindInitializer:
			g.Initializer = slices.DeleteFunc(g.Initializer, func(t *onnxpb.TensorProto) bool { return t.GetName() == w.Name })
		case onnx.KindSparseInitializer:
			g.SparseInitializer = slices.DeleteFunc(g.SparseInitializer, func(t *onnxpb.SparseTensorProto) bool { return t.GetValues().GetName() == w.Name })
		case onnx.KindConstant:
			g.Node = slices.DeleteFunc(g.Node, func(n *onnxpb.NodeProto) bool { return n == w.Node })
		}
		g.Input = slices.DeleteFunc(g.Input, func(vi *onnxpb.ValueInfoProto) bool { return vi.GetName() == w.Name })
		dims := make([]onnx.Dim, len(w.Dims))
		for i, d := range w.Dims {
			dims[i] = d
		}
		main.Input = append(main.Input, onnx.ValueInfo(w.Name, onnx.Float, dims))
	}
	return p, nil
}
