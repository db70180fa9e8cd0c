package quantize

import (
	"context"
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Static quantization writes the QDQ form ONNX Runtime turns into integer
// kernels (QLinearConv, QLinearMatMul, QGemm): every quantized node reads
// its activation through QuantizeLinear -> DequantizeLinear and its weight
// through a DequantizeLinear of int8 data; its output goes through
// QuantizeLinear -> DequantizeLinear again; each reader gets its own
// DequantizeLinear, as ONNX Runtime's QDQ selectors require; biases are
// int32 with scale input_scale * weight_scale. Operators that only move
// data (MaxPool, Reshape, ...) after a quantized output stay between Q/DQ
// pairs with the same parameters, which ONNX Runtime drops, so they run on
// integers too; a Relu (or Clip at 0) right after a quantized node is
// removed, its range folded into the output's QuantizeLinear, as
// onnxruntime's QDQ quantizer does.

// Which operators run on integer kernels, pass quantized values through
// or fold into the quantization before them is the registry's static
// role of each (registry.go).

// activation is a tensor static quantization puts through Q -> DQ.
type activation struct {
	name string
	// root is the tensor whose calibrated range it uses: itself, or the
	// input of the pass-through operator that made it.
	root string
	// producer writes it in the output model (nil for a graph input).
	producer *onnxpb.NodeProto
	// integer: made by a quantized node, so every reader must read it
	// through a DequantizeLinear for ONNX Runtime to fuse the producer.
	integer bool
	readers []use
}

type staticPlan struct {
	slots  []weightSlot
	acts   []*activation
	byName map[string]*activation
	// folded maps a removed Relu/Clip to the quantized node before it.
	folded map[*onnxpb.NodeProto]*onnxpb.NodeProto
}

// Static quantization keeps the output cosine, against the float model on
// held calibration batches, at fidelityTarget, or within fidelitySlack of
// what int8 weights alone allow when that is lower: below it, the nodes
// whose activations lose most in quantization are computed in float
// (weights still int8), the fewest that meet the target. Models such as
// MobileNetV3 (ppocr-det's backbone, where 8-bit conv outputs feed
// HardSwish) lose too much when every activation is 8-bit.
const (
	fidelityTarget = 0.99
	fidelitySlack  = 0.005
)

// heldBatches is how many calibration batches are kept to measure fidelity.
const heldBatches = 2

func quantizeStatic(ctx context.Context, m *onnx.Model, o *options, calib Calibration, r *Report) (*onnx.Model, error) {
	if err := ensureOpset(m, opsetPerChannel); err != nil {
		return nil, err
	}
	if o.smooth != nil {
		// SmoothQuant and the calibration each read the data.
		passes, err := replayable(m, calib, o.calib.Samples)
		if err != nil {
			return nil, err
		}
		if r.SmoothQuant, err = smoothQuant(ctx, m, o, passes()); err != nil {
			return nil, err
		}
		calib = passes()
	}
	ix := newIndex(m)
	probeReport := &Report{Method: r.Method, own: map[string]bool{}}
	slots := weightSlots(ix, o, probeReport, map[string]bool{})
	if len(slots) == 0 {
		return nil, noWeightsError(m, probeReport)
	}
	p := planStatic(ix, o, slots, probeReport, nil)
	collector, err := NewCollector(o.calib)
	if err != nil {
		return nil, err
	}
	roots := p.roots()
	var cal *calibration
	if o.calib.Shards > 0 {
		cal, err = calibrateShards(ctx, m, roots, calib, o.calib)
	} else {
		cal, err = calibrate(ctx, m, roots, calib, collector, int(o.calib.Samples))
	}
	if err != nil {
		return nil, err
	}
	// With nodes in float, an activation that shared its range (the output
	// of a MaxPool or Reshape) can be planned on its own: give every
	// activation of the full plan its range by name.
	for _, a := range p.acts {
		cal.ranges[a.name] = cal.ranges[a.root]
	}
	order, err := sensitivityOrder(m, ix, p, cal, o)
	if err != nil {
		return nil, err
	}
	floatOut, err := runBatches(m, cal.held)
	if err != nil {
		return nil, err
	}
	// try computes the k most sensitive nodes in float.
	try := func(k int) (*onnx.Model, *Report, error) {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		fallback := map[int]bool{}
		for _, i := range order[:k] {
			fallback[i] = true
		}
		q, rq, err := buildStatic(m, o, cal.ranges, fallback, r)
		if err != nil {
			return nil, nil, err
		}
		got, err := runBatches(q, cal.held)
		if err != nil {
			return nil, nil, err
		}
		rq.CalibrationSamples = cal.samples
		rq.Fidelity = meanCosine(floatOut, got)
		return q, rq, nil
	}
	best, bestReport, err := fewestInFloat(len(order), try)
	if err != nil {
		return nil, err
	}
	*r = *bestReport
	return best, nil
}

// fewestInFloat returns the result of try(k) for the smallest k (nodes
// computed in float, of n candidates) whose fidelity meets fidelityTarget,
// or is within fidelitySlack of try(n)'s when even that misses it (see
// fewest).
func fewestInFloat(n int, try func(k int) (*onnx.Model, *Report, error)) (*onnx.Model, *Report, error) {
	type result struct {
		m *onnx.Model
		r *Report
	}
	best, _, _, err := fewest(n, func(k int) (result, float64, error) {
		m, r, err := try(k)
		if err != nil {
			return result{}, 0, err
		}
		return result{m, r}, r.Fidelity, nil
	})
	return best.m, best.r, err
}

// fewest returns the result of try(k) for the smallest k (of n
// candidates kept at higher precision, most sensitive first) whose
// fidelity meets fidelityTarget, or is within fidelitySlack of try(n)'s
// when even that misses it, with its fidelity and k: it doubles k until
// the target is met, then bisects (fidelity grows, roughly
// monotonically, as candidates are kept).
func fewest[T any](n int, try func(k int) (T, float64, error)) (T, float64, int, error) {
	var zero T
	best, bestFid, err := try(0)
	if err != nil {
		return zero, 0, 0, err
	}
	target := fidelityTarget
	if bestFid < target && n > 0 {
		_, floor, err := try(n)
		if err != nil {
			return zero, 0, 0, err
		}
		target = min(target, floor-fidelitySlack)
	}
	lo, hi := 0, 0 // lo fails the target; hi is the best passing count found
	for bestFid < target && hi < n {
		lo, hi = hi, min(max(2*hi, 1), n)
		if best, bestFid, err = try(hi); err != nil {
			return zero, 0, 0, err
		}
	}
	for hi-lo > 1 && bestFid >= target {
		mid := (lo + hi) / 2
		q, fid, err := try(mid)
		if err != nil {
			return zero, 0, 0, err
		}
		if fid >= target {
			hi, best, bestFid = mid, q, fid
		} else {
			lo = mid
		}
	}
	return best, bestFid, hi, nil
}

// buildStatic quantizes a copy of m with the calibrated ranges, computing
// the main-graph nodes at the positions in fallback in float.
func buildStatic(m *onnx.Model, o *options, ranges map[string]Range, fallback map[int]bool, base *Report) (*onnx.Model, *Report, error) {
	q := m.Clone()
	r := &Report{Method: base.Method, RemovedNodes: base.RemovedNodes, SmoothQuant: base.SmoothQuant, own: map[string]bool{}}
	ix := newIndex(q)
	slots := weightSlots(ix, o, r, map[string]bool{})
	nodes := map[*onnxpb.NodeProto]bool{}
	for i, n := range q.Proto.GetGraph().GetNode() {
		if fallback[i] {
			nodes[n] = true
		}
	}
	p := planStatic(ix, o, slots, r, nodes)
	if err := p.rewrite(ix, o, ranges, r); err != nil {
		return nil, nil, err
	}
	return q, r, nil
}

// planStatic decides which nodes run on integers and which tensors get
// Q/DQ, walking the main graph in topological order.
func planStatic(ix *index, o *options, slots []weightSlot, r *Report, fallback map[*onnxpb.NodeProto]bool) *staticPlan {
	p := &staticPlan{byName: map[string]*activation{}, folded: map[*onnxpb.NodeProto]*onnxpb.NodeProto{}}
	main := ix.model.Proto.GetGraph()
	bySlot := map[*onnxpb.NodeProto]int{}
	for i := range slots {
		s := &slots[i]
		s.integer = s.graph == main && quantizerOf(s.node).static(ix, s.node).integer() && !fallback[s.node]
		bySlot[s.node] = i
	}
	p.slots = slots
	for _, n := range main.GetNode() {
		if p.folded[n] != nil {
			continue
		}
		role := quantizerOf(n).static(ix, n)
		if i, ok := bySlot[n]; ok && slots[i].integer {
			p.readAsActivation(ix, n, slots[i].layer.Data)
			out, producer := n.GetOutput()[0], n
			act := foldableActivation(ix, o, n)
			if act != nil {
				out = act.GetOutput()[0]
			}
			if role == staticIntegerFloatOutput && !feedsQuantized(ix, o, out) {
				continue // a float output: an activation after it stays
			}
			if act != nil {
				p.folded[act] = n
			}
			p.addOutput(ix, out, out, producer)
			continue
		}
		if role == staticPassThrough && o.excluded(n.GetOpType(), n.GetName()) == "" && singleOutput(ix, n) {
			in := p.byName[n.GetInput()[0]]
			if in != nil && in.integer {
				p.addOutput(ix, n.GetOutput()[0], in.root, n)
			}
		}
	}
	reported := map[*onnxpb.NodeProto]bool{} // a recurrent node has two weights
	for _, s := range slots {
		if !s.integer && !reported[s.node] && !embedding(s) { // a Gather's indices are no activation
			reported[s.node] = true
			reason := ReasonNoIntegerOp
			switch {
			case s.graph != main:
				reason = ReasonSubgraph
			case fallback[s.node]:
				reason = ReasonSensitive
			}
			r.addFloat(input(s.node, s.layer.Data), &s.use, reason, "activation read in float by "+s.node.GetOpType())
		}
	}
	return p
}

// readAsActivation makes input i of n read through Q -> DQ.
func (p *staticPlan) readAsActivation(ix *index, n *onnxpb.NodeProto, i int) {
	name := n.GetInput()[i]
	u := use{graph: ix.graphOf[n], node: n, input: i}
	if a := p.byName[name]; a != nil {
		if !a.integer { // integer activations already list every reader
			a.readers = append(a.readers, u)
		}
		return
	}
	a := &activation{name: name, root: name, producer: ix.producer[name], readers: []use{u}}
	p.byName[name] = a
	p.acts = append(p.acts, a)
}

// addOutput quantizes the output of a quantized node: every reader reads it
// through its own DequantizeLinear.
func (p *staticPlan) addOutput(ix *index, name, root string, producer *onnxpb.NodeProto) {
	a := &activation{name: name, root: root, producer: producer, integer: true}
	a.readers = append(a.readers, ix.uses[name]...)
	p.byName[name] = a
	p.acts = append(p.acts, a)
}

// foldableActivation returns the activation (Relu, Clip with min 0: the
// registry's staticActivation) that alone reads n's output, if it can be
// folded into the output's quantization.
func foldableActivation(ix *index, o *options, n *onnxpb.NodeProto) *onnxpb.NodeProto {
	out := n.GetOutput()[0]
	uses := ix.uses[out]
	if len(uses) != 1 || ix.outputs[out] || uses[0].input != 0 || uses[0].graph != ix.graphOf[n] {
		return nil
	}
	act := uses[0].node
	if quantizerOf(act).static(ix, act) != staticActivation || o.excluded(act.GetOpType(), act.GetName()) != "" {
		return nil
	}
	return act
}

// clipMin is a Clip's lower bound (attribute before opset 11, input 1
// after), or NaN when it is not a constant.
func clipMin(ix *index, n *onnxpb.NodeProto) float32 {
	if len(n.GetInput()) < 2 || n.GetInput()[1] == "" {
		for _, a := range n.GetAttribute() {
			if a.GetName() == "min" {
				return a.GetF()
			}
		}
		return float32(math.Inf(-1))
	}
	c := ix.floatConst(n.GetInput()[1])
	if c == nil {
		return float32(math.NaN())
	}
	v, err := floatData(c)
	if err != nil || len(v) != 1 {
		return float32(math.NaN())
	}
	return v[0]
}

// feedsQuantized reports whether some reader of name will read it as a
// quantized activation (the data input of a quantized node, the input of
// a pass-through operator).
func feedsQuantized(ix *index, o *options, name string) bool {
	for _, u := range ix.uses[name] {
		role := quantizerOf(u.node).static(ix, u.node)
		in := 0
		if l, ok := onnx.LayerOf(u.node); ok {
			in = l.Data
		}
		if u.input == in && (role.integer() || role == staticPassThrough) && o.excluded(u.node.GetOpType(), u.node.GetName()) == "" {
			return true
		}
	}
	return false
}

func singleOutput(ix *index, n *onnxpb.NodeProto) bool {
	for i, out := range n.GetOutput() {
		if i > 0 && out != "" && (len(ix.uses[out]) > 0 || ix.outputs[out]) {
			return false
		}
	}
	return len(n.GetOutput()) > 0
}

// roots are the tensors calibration must observe.
func (p *staticPlan) roots() []string {
	seen := map[string]bool{}
	var out []string
	for _, a := range p.acts {
		if !seen[a.root] {
			seen[a.root] = true
			out = append(out, a.root)
		}
	}
	return out
}

// rewrite applies the plan with the calibrated ranges.
func (p *staticPlan) rewrite(ix *index, o *options, ranges map[string]Range, r *Report) error {
	e := newEditor(ix, r.own)
	for act, n := range p.folded {
		n.Output[0] = act.GetOutput()[0]
		e.remove(act)
		r.RemovedNodes++
	}
	params := map[string]Params{}
	for _, a := range p.acts {
		rg, ok := ranges[a.root]
		if !ok {
			return fmt.Errorf("calibration produced no range for %q", a.root)
		}
		params[a.name] = ComputeParams(rg.Min, rg.Max, o.activation, false)
	}
	stored := map[storedKey]*storedWeight{}
	floors := p.weightScaleFloors(ix, o, params)
	reduced := p.reducedRange(o, params)
	for _, s := range p.slots {
		key := storedKey{s.weight.name, s.graph}
		w, err := p.storeSlotWeight(e, o, s, stored, floors[key], reduced[key], r)
		if err != nil {
			return err
		}
		if w == nil {
			continue
		}
		if embedding(s) {
			gatherThenDQ(e, s, w)
		} else {
			readThroughDQ(e, s.use, w, s.weight.name)
		}
		if s.integer {
			if err := p.quantizeBias(e, ix, s, w, params, r); err != nil {
				return err
			}
		}
	}
	for _, a := range p.acts {
		if err := p.insertQDQ(e, ix, a, params[a.name], o.activation); err != nil {
			return err
		}
	}
	r.Activations = len(p.acts)
	e.apply()
	removeDeadConstants(ix.model)
	return nil
}

// storeSlotWeight quantizes a slot's weight once (int8, per channel or per
// tensor, no scale below its floor) and returns the stored form all its
// readers share.
func (p *staticPlan) storeSlotWeight(e *editor, o *options, s weightSlot, stored map[storedKey]*storedWeight, floors []float64, reduced bool, r *Report) (*storedWeight, error) {
	key := storedKey{s.weight.name, s.graph}
	if w := stored[key]; w != nil {
		return w, nil
	}
	data, err := floatData(s.weight)
	if err == errNotFinite {
		r.addFloat(s.weight.name, &s.use, ReasonNotFinite, "")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var q *Quantized
	if o.perChannel {
		q, err = PerAxis(data, s.weight.dims(), s.axis, Int8, o.symmetric)
	} else {
		q, err = PerTensor(data, s.weight.dims(), Int8, o.symmetric)
	}
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	granularity := q.granularity()
	if reduced {
		floors = reducedFloors(q, floors)
		granularity += ", 7-bit range"
	}
	q.raiseScales(data, floors)
	w, err := storeWeight(e, s.graph, s.weight, q)
	if err != nil {
		return nil, err
	}
	stored[key] = w
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: s.weight.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(),
		Type: q.Type.String(), Granularity: granularity, Elements: len(data),
	})
	return w, nil
}

// signedInput is how far above the bottom of its type an integer node's
// input zero point must sit for the node's weights to take a 7-bit range.
const signedInput = 64

// reducedRange says which stored weights take the 7-bit range [-63, 63]:
// the symmetric weights of integer matrix products (MatMul, Gemm) whose
// input is quantized with a zero point at least signedInput above its
// type's lowest code (an input with a large negative part: tanh,
// layer-normalized or raw signed values, as in transformers and
// recurrent heads). ONNX Runtime's u8s8 kernels on CPUs without VNNI add
// pairs of products in 16 bits, which saturate when codes around such a
// zero point meet full-range weights (a relative error of 10% instead of
// 2% on a GRU controller); halving the weights' range, as onnxruntime's
// reduce_range does, rules that out, so these products compute the same
// on every CPU. Inputs of ReLU networks sit at zero point 0 and keep 8
// bits; convolutions keep 8 bits (on CNNs, where the fidelity search
// already computes the nodes that lose most in float, the coarser weights
// cost more than the saturation).
func (p *staticPlan) reducedRange(o *options, params map[string]Params) map[storedKey]bool {
	out := map[storedKey]bool{}
	if !o.symmetric {
		return out
	}
	qmin, _ := o.activation.Range()
	for _, s := range p.slots {
		if !s.integer || (s.layer.Kind != onnx.LayerMatMul && s.layer.Kind != onnx.LayerGemm) {
			continue
		}
		if in, ok := params[input(s.node, s.layer.Data)]; ok && in.ZeroPoint-qmin >= signedInput {
			out[storedKey{s.weight.name, s.graph}] = true
		}
	}
	return out
}

// reducedFloors returns floors that widen every scale of a symmetric int8
// weight to put its codes in [-63, 63], merged with the floors it had.
func reducedFloors(q *Quantized, floors []float64) []float64 {
	out := make([]float64, len(q.Scales))
	for c, sc := range q.Scales {
		out[c] = float64(sc) * 127 / reducedMax
		if c < len(floors) {
			out[c] = max(out[c], floors[c])
		}
	}
	return out
}

// storedKey is a weight stored in one graph.
type storedKey struct {
	name  string
	graph *onnxpb.GraphProto
}

// quantizeBias writes the bias of an integer node (where the operator
// table puts it: a Conv's B, a Gemm's C) as int32 with scale input_scale *
// weight_scale (per output channel), read through a DequantizeLinear,
// which is how QLinearConv and QGemm take it.
func (p *staticPlan) quantizeBias(e *editor, ix *index, s weightSlot, w *storedWeight, params map[string]Params, r *Report) error {
	n := s.node
	b, data, in, reason, detail := biasOf(ix, s, params, len(w.q.Scales))
	if reason != "" {
		r.addFloat(b.name, &use{graph: s.graph, node: n, input: s.layer.Bias}, reason, detail)
		return nil
	}
	if b == nil {
		return nil
	}
	channels := len(w.q.Scales)
	dims := b.dims()
	count := len(data)
	scales := make([]float32, count)
	codes := make([]int32, count)
	for i, v := range data {
		scales[i] = in.Scale * w.q.Scales[min(i, channels-1)]
		codes[i] = biasCode(v, scales[i])
	}
	qname, err := e.addInit(b.graph, b.name+"_quantized", onnx.NewTensor(append([]int64{}, dims...), codes))
	if err != nil {
		return err
	}
	sname, err := e.addInit(b.graph, b.name+"_scale", onnx.NewTensor([]int64{int64(count)}, scales))
	if err != nil {
		return err
	}
	last := len(dims) - 1
	out := e.ix.fresh(b.name + "_dequantized")
	e.insertBefore(n, dqNode(e.ix.fresh(b.name+"_DequantizeLinear"), []string{qname, sname}, out, last, 0))
	n.Input[s.layer.Bias] = out
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: b.name, Node: onnx.Label(n), OpType: n.GetOpType(), Type: "int32",
		Granularity: fmt.Sprintf("per-channel(axis %d)", last), Elements: count,
	})
	return nil
}

// biasOf returns the constant bias of an integer slot, its values and the
// parameters of the slot's input when the bias can be written as int32
// for a weight with the given number of scales; the reason (and a detail)
// when it must stay in float; nothing when there is no constant bias or
// the input is not quantized.
func biasOf(ix *index, s weightSlot, params map[string]Params, channels int) (b *constant, data []float32, in Params, reason Reason, detail string) {
	n := s.node
	bias := input(n, s.layer.Bias)
	if bias == "" {
		return nil, nil, in, "", ""
	}
	b = ix.consts[bias]
	in, ok := params[input(n, s.layer.Data)]
	switch {
	case b == nil:
		return nil, nil, in, "", "" // computed at run time: stays as it is
	case b.dtype() != onnx.Float:
		return b, nil, in, ReasonNotFloat32, "bias"
	case len(ix.uses[b.name]) != 1 || b.overridable:
		return b, nil, in, ReasonSharedWeight, "bias"
	case !ok:
		return nil, nil, in, "", ""
	}
	dims := b.dims()
	count := onnx.NumElements(dims)
	if len(dims) == 0 || dims[len(dims)-1] != int64(count) || (channels > 1 && count != channels) {
		return b, nil, in, ReasonShape, fmt.Sprintf("bias %v", dims)
	}
	data, err := floatData(b)
	if err != nil {
		return b, nil, in, ReasonNotFinite, "bias"
	}
	return b, data, in, "", ""
}

// insertQDQ puts one QuantizeLinear after the activation's producer and a
// DequantizeLinear before each reader.
func (p *staticPlan) insertQDQ(e *editor, ix *index, a *activation, pr Params, t QType) error {
	main := ix.model.Proto.GetGraph()
	scale, err := e.addInit(main, a.name+"_scale", onnx.NewTensor([]int64{}, []float32{pr.Scale}))
	if err != nil {
		return err
	}
	zp, err := e.addInit(main, a.name+"_zero_point", codesTensor(t, []int64{}, []byte{byte(pr.ZeroPoint)}))
	if err != nil {
		return err
	}
	src := a.name
	var tail []*onnxpb.NodeProto
	if a.integer && ix.outputs[a.name] {
		// The producer must feed only the QuantizeLinear: it writes a new
		// name, and a DequantizeLinear gives the graph output its value.
		src = e.ix.fresh(a.name + "_float")
		renameOutput(a.producer, a.name, src)
	}
	q := e.ix.fresh(a.name + "_quantized")
	qnode := newNode("QuantizeLinear", "", e.ix.fresh(a.name+"_QuantizeLinear"), []string{src, scale, zp}, []string{q})
	if src != a.name {
		tail = append(tail, dqNode(e.ix.fresh(a.name+"_DequantizeLinear"), []string{q, scale, zp}, a.name, -1, 0))
	}
	if a.producer != nil {
		e.after[a.producer] = append(e.after[a.producer], append([]*onnxpb.NodeProto{qnode}, tail...)...)
	} else {
		e.front[main] = append(e.front[main], append([]*onnxpb.NodeProto{qnode}, tail...)...)
	}
	for _, u := range a.readers {
		if u.node.GetInput()[u.input] != a.name {
			continue // rewired already (a node reading the tensor twice)
		}
		out := e.ix.fresh(a.name + "_dequantized")
		e.insertBefore(u.node, dqNode(e.ix.fresh(a.name+"_DequantizeLinear"), []string{q, scale, zp}, out, -1, 0))
		u.node.Input[u.input] = out
	}
	return nil
}

func renameOutput(n *onnxpb.NodeProto, from, to string) {
	for i, o := range n.GetOutput() {
		if o == from {
			n.Output[i] = to
		}
	}
}
