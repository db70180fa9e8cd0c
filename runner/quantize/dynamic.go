package quantize

import (
	"fmt"
	"math"
	"slices"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Dynamic quantization stores weights as int8 and quantizes activations at
// run time, in the form onnxruntime's quantize_dynamic writes (each
// operator's registry entry picks its form):
//
//	MatMul: DynamicQuantizeLinear(A) -> MatMulInteger -> Cast -> Mul(a_scale*b_scale)
//	        (ONNX Runtime fuses it into DynamicQuantizeMatMul)
//	Gemm:   the same on B (transposed to [K, N] when transB), alpha folded
//	        into the scale, beta*C added after
//	Conv:   DynamicQuantizeLinear(X) -> ConvInteger -> Cast -> Mul(x_scale*w_scale) [-> Add bias]
//
// ConvInteger takes one weight zero point, so Conv weights are per-channel
// only when symmetric (every zero point 0; the per-channel scales are
// applied by the Mul); asymmetric Conv weights are per-tensor.
// ConvTranspose has no integer kernel: its weight is stored as int8 and
// dequantized, the convolution runs in float.

func quantizeDynamic(m *onnx.Model, o *options, r *Report) error {
	// 11 has DynamicQuantizeLinear, ConvInteger and MatMulInteger; 13 the
	// per-channel DequantizeLinear of weights without an integer kernel.
	if err := ensureOpset(m, opsetPerChannel); err != nil {
		return err
	}
	ix := newIndex(m)
	slots := weightSlots(ix, o, r, map[string]bool{})
	if len(slots) == 0 {
		return noWeightsError(m, r)
	}
	d := &dynamic{e: newEditor(ix, r.own), ix: ix, o: o, r: r, dql: map[dqlKey]*dqlOutputs{},
		slots: map[*onnxpb.NodeProto]map[int]weightSlot{}, converted: map[*onnxpb.NodeProto]bool{}, floatData: map[*onnxpb.NodeProto]bool{}, reduced: map[string]bool{}}
	for _, s := range slots {
		if d.slots[s.node] == nil {
			d.slots[s.node] = map[int]weightSlot{}
		}
		d.slots[s.node][s.input] = s
	}
	left := pendingReaders(slots)
	for _, s := range slots {
		replaced, err := quantizerOf(s.node).dynamic(d, s)
		if err != nil {
			return fmt.Errorf("%s: %w", onnx.Label(s.node), err)
		}
		left.done(s, replaced)
	}
	r.Activations = len(d.dql) + d.kernelInputs
	d.e.apply()
	removeDeadConstants(m)
	if d.kernelInputs > 0 && m.Opset(msDomain) == 0 {
		m.SetOpset(msDomain, 1)
	}
	return nil
}

type dynamic struct {
	e   *editor
	ix  *index
	o   *options
	r   *Report
	dql map[dqlKey]*dqlOutputs
	// slots are the weight slots of each node, by input.
	slots map[*onnxpb.NodeProto]map[int]weightSlot
	// converted nodes were replaced with all their weights (an LSTM by
	// DynamicQuantizeLSTM when its W came).
	converted map[*onnxpb.NodeProto]bool
	// kernelInputs counts inputs a kernel quantizes itself at run time.
	kernelInputs int
	// floatData: nodes whose data input is already reported as read in
	// float.
	floatData map[*onnxpb.NodeProto]bool
	// reduced weights take the 7-bit range.
	reduced map[string]bool
}

type dqlKey struct {
	graph *onnxpb.GraphProto
	name  string
}

type dqlOutputs struct{ q, scale, zp string }

// quantizeInput returns the run-time quantized form of a node's data input,
// adding one DynamicQuantizeLinear per tensor and graph, before its first
// reader.
func (d *dynamic) quantizeInput(s weightSlot) *dqlOutputs {
	name := input(s.node, s.layer.Data)
	k := dqlKey{s.graph, name}
	if out := d.dql[k]; out != nil {
		return out
	}
	out := &dqlOutputs{q: d.ix.fresh(name + "_quantized"), scale: d.ix.fresh(name + "_scale"), zp: d.ix.fresh(name + "_zero_point")}
	d.e.insertBefore(s.node, newNode("DynamicQuantizeLinear", "", d.ix.fresh(name+"_DynamicQuantizeLinear"),
		[]string{name}, []string{out.q, out.scale, out.zp}))
	d.dql[k] = out
	return out
}

// quantizeWeight quantizes a slot's weight to int8 along axis (per channel
// when the spec asks and perChannel allows it).
func (d *dynamic) quantizeWeight(s weightSlot, axis int, perChannel bool) (*Quantized, error) {
	data, err := floatData(s.weight)
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", s.weight.name, err)
	}
	if perChannel {
		return PerAxis(data, s.weight.dims(), axis, Int8, d.o.symmetric)
	}
	return PerTensor(data, s.weight.dims(), Int8, d.o.symmetric)
}

func (d *dynamic) reportWeight(s weightSlot, q *Quantized) {
	granularity := q.granularity()
	if d.reduced[s.weight.name] {
		granularity += ", 7-bit range"
	}
	d.r.Quantized = append(d.r.Quantized, QuantizedTensor{
		Name: s.weight.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(),
		Type: q.Type.String(), Granularity: granularity, Elements: len(q.Data),
	})
}

func (d *dynamic) matMul(s weightSlot) error {
	q, err := d.quantizeWeight(s, s.axis, d.o.perChannel)
	if err != nil {
		return err
	}
	d.reduceForSignedInput(s, q)
	return d.integerMatMulWith(s, q, 1, "")
}

// reduceForSignedInput puts the int8 weight of a matrix product into the
// 7-bit range [-63, 63] unless its input is known not to be negative: the
// input's run-time quantization then takes a zero point around 128, and
// ONNX Runtime's u8s8 products saturate on CPUs without VNNI (see
// reducedRange). The input is non-negative after a ReLU, Sigmoid,
// Softmax or Clip at 0, through operators that only move or pool
// values; ReLU networks (mnist-8) keep 8 bits.
func (d *dynamic) reduceForSignedInput(s weightSlot, q *Quantized) {
	if !d.o.symmetric || nonNegative(d.ix, input(s.node, s.layer.Data), 0) {
		return
	}
	data, err := floatData(s.weight)
	if err != nil {
		return // quantizeWeight read it already
	}
	q.raiseScales(data, reducedFloors(q, nil))
	d.reduced[s.weight.name] = true
}

// nonNegative reports whether a tensor cannot hold negative values, from
// the operators that produce it.
func nonNegative(ix *index, name string, depth int) bool {
	p := ix.producer[name]
	if p == nil || depth > 16 {
		return false
	}
	switch p.GetOpType() {
	case "Relu", "Sigmoid", "Softmax":
		return true
	case "Clip":
		return clipMin(ix, p) >= 0
	case "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity":
		return nonNegative(ix, p.GetInput()[0], depth+1)
	}
	return false
}

// gemm replaces a Gemm by MatMulInteger on B as [K, N]; replaced is false
// when it stays in float (transA, or beta on a computed C).
func (d *dynamic) gemm(s weightSlot) (replaced bool, err error) {
	n, l := s.node, s.layer
	if l.TransA {
		d.r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, "Gemm with transA")
		return false, nil
	}
	bias := ""
	beta := onnx.FloatAttr(n, "beta", 1)
	if input(n, l.Bias) != "" {
		bias = input(n, l.Bias)
		d.r.addFloat(bias, &use{graph: s.graph, node: n, input: l.Bias}, ReasonBias, "added in float after MatMulInteger")
		if beta != 1 {
			c := d.ix.floatConst(bias)
			if c == nil {
				d.r.addFloat(s.weight.name, &s.use, ReasonUnsupportedOp, "Gemm with beta != 1 on a computed C")
				return false, nil
			}
			v, err := floatData(c)
			if err != nil {
				return false, err
			}
			for i := range v {
				v[i] *= beta
			}
			if bias, err = d.e.addInit(s.graph, c.name+"_beta", onnx.NewTensor(append([]int64{}, c.dims()...), v)); err != nil {
				return false, err
			}
		}
	}
	q, err := d.quantizeWeight(s, s.axis, d.o.perChannel)
	if err != nil {
		return false, err
	}
	d.reduceForSignedInput(s, q)
	if l.TransB {
		q = transpose2D(q)
	}
	return true, d.integerMatMulWith(s, q, onnx.FloatAttr(n, "alpha", 1), bias)
}

// integerMatMulWith replaces the node by MatMulInteger on a [K, N] weight
// quantized along axis 1 (or per tensor), scaled back to float, with an
// optional bias added.
func (d *dynamic) integerMatMulWith(s weightSlot, q *Quantized, alpha float32, bias string) error {
	in := d.quantizeInput(s)
	w, err := d.storeDynamicWeight(s, q, alpha, q.ScaleShape)
	if err != nil {
		return err
	}
	n, base := s.node, s.node.GetOutput()[0]
	i32, f, scale := d.ix.fresh(base+"_int32"), d.ix.fresh(base+"_float"), d.ix.fresh(base+"_scale")
	out := n.GetOutput()[0]
	product := out
	if bias != "" {
		product = d.ix.fresh(base + "_product")
	}
	nodes := []*onnxpb.NodeProto{
		newNode("MatMulInteger", "", d.ix.fresh(base+"_MatMulInteger"), []string{in.q, w.data, in.zp, w.zp}, []string{i32}),
		newNode("Cast", "", d.ix.fresh(base+"_Cast"), []string{i32}, []string{f}, onnx.AttrInt("to", int64(onnx.Float))),
		newNode("Mul", "", d.ix.fresh(base+"_scale_Mul"), []string{in.scale, w.scale}, []string{scale}),
		newNode("Mul", "", d.ix.fresh(base+"_Mul"), []string{f, scale}, []string{product}),
	}
	if bias != "" {
		nodes = append(nodes, newNode("Add", "", d.ix.fresh(base+"_bias_Add"), []string{product, bias}, []string{out}))
	}
	d.e.insertBefore(n, nodes...)
	d.e.remove(n)
	d.reportWeight(s, q)
	return nil
}

type dynamicWeight struct{ data, scale, zp string }

// storeDynamicWeight writes the int8 data, the scales times alpha in
// scaleDims (shaped to broadcast over the output) and the zero point: one
// per channel, or a scalar when all are equal (ConvInteger takes no other).
func (d *dynamic) storeDynamicWeight(s weightSlot, q *Quantized, alpha float32, scaleDims []int64) (*dynamicWeight, error) {
	g := s.graph
	data, err := d.e.addInit(g, s.weight.name+"_quantized", q.tensor())
	if err != nil {
		return nil, err
	}
	scales := make([]float32, len(q.Scales))
	for i, v := range q.Scales {
		scales[i] = v * alpha
	}
	scale, err := d.e.addInit(g, s.weight.name+"_scale", onnx.NewTensor(append([]int64{}, scaleDims...), scales))
	if err != nil {
		return nil, err
	}
	zpt := q.zeroPointTensor()
	if uniform(q.ZeroPoints) {
		zpt = codesTensor(q.Type, []int64{}, []byte{byte(q.ZeroPoints[0])})
	}
	zp, err := d.e.addInit(g, s.weight.name+"_zero_point", zpt)
	if err != nil {
		return nil, err
	}
	return &dynamicWeight{data: data, scale: scale, zp: zp}, nil
}

func uniform(v []int32) bool {
	for _, x := range v[1:] {
		if x != v[0] {
			return false
		}
	}
	return true
}

func (d *dynamic) conv(s weightSlot) error {
	perChannel := d.o.perChannel && d.o.symmetric
	q, err := d.quantizeWeight(s, s.axis, perChannel)
	if err != nil {
		return err
	}
	rank := len(s.weight.dims())
	scaleDims := []int64{}
	if len(q.Scales) > 1 {
		scaleDims = make([]int64, rank-1) // [M, 1, ...] broadcasts over [N, M, ...]
		scaleDims[0] = int64(len(q.Scales))
		for i := 1; i < len(scaleDims); i++ {
			scaleDims[i] = 1
		}
	}
	in := d.quantizeInput(s)
	w, err := d.storeDynamicWeight(s, q, 1, scaleDims)
	if err != nil {
		return err
	}
	n, base := s.node, s.node.GetOutput()[0]
	i32, f, scale := d.ix.fresh(base+"_int32"), d.ix.fresh(base+"_float"), d.ix.fresh(base+"_scale")
	out, product := n.GetOutput()[0], n.GetOutput()[0]
	var biasNodes []*onnxpb.NodeProto
	if b := input(n, s.layer.Bias); b != "" {
		bias, err := d.channelBias(s, b, rank)
		if err != nil {
			return err
		}
		product = d.ix.fresh(base + "_product")
		biasNodes = append(biasNodes, newNode("Add", "", d.ix.fresh(base+"_bias_Add"), []string{product, bias}, []string{out}))
	}
	conv := newNode("ConvInteger", "", d.ix.fresh(base+"_ConvInteger"), []string{in.q, w.data, in.zp, w.zp}, []string{i32})
	for _, a := range n.GetAttribute() {
		conv.Attribute = append(conv.Attribute, a)
	}
	nodes := []*onnxpb.NodeProto{
		conv,
		newNode("Cast", "", d.ix.fresh(base+"_Cast"), []string{i32}, []string{f}, onnx.AttrInt("to", int64(onnx.Float))),
		newNode("Mul", "", d.ix.fresh(base+"_scale_Mul"), []string{in.scale, w.scale}, []string{scale}),
		newNode("Mul", "", d.ix.fresh(base+"_Mul"), []string{f, scale}, []string{product}),
	}
	d.e.insertBefore(n, append(nodes, biasNodes...)...)
	d.e.remove(n)
	d.reportWeight(s, q)
	return nil
}

// channelBias returns a Conv bias shaped [M, 1, ...] to add after the
// integer convolution: the constant reshaped, or a Reshape of a computed one.
func (d *dynamic) channelBias(s weightSlot, name string, rank int) (string, error) {
	dims := make([]int64, rank-1)
	for i := range dims {
		dims[i] = 1
	}
	dims[0] = -1
	if c := d.ix.floatConst(name); c != nil && !c.overridable {
		v, err := floatData(c)
		if err != nil {
			return "", err
		}
		dims[0] = int64(len(v))
		d.r.addFloat(name, &use{graph: s.graph, node: s.node, input: s.layer.Bias}, ReasonBias, "added in float after ConvInteger")
		return d.e.addInit(s.graph, c.name+"_channels", onnx.NewTensor(dims, v))
	}
	shape, err := d.e.addInit(s.graph, name+"_shape", onnx.NewTensor([]int64{int64(len(dims))}, dims))
	if err != nil {
		return "", err
	}
	out := d.ix.fresh(name + "_channels")
	d.e.insertBefore(s.node, newNode("Reshape", "", d.ix.fresh(name+"_Reshape"), []string{name, shape}, []string{out}))
	return out, nil
}

// weightOnly stores a weight as int8 per channel read through a
// DequantizeLinear, for operators without an integer kernel.
func (d *dynamic) weightOnly(s weightSlot) error {
	q, err := d.quantizeWeight(s, s.axis, d.o.perChannel)
	if err != nil {
		return err
	}
	w, err := storeWeight(d.e, s.graph, s.weight, q)
	if err != nil {
		return err
	}
	readThroughDQ(d.e, s.use, w, s.weight.name)
	d.reportWeight(s, q)
	if !d.floatData[s.node] {
		d.floatData[s.node] = true
		d.r.addFloat(input(s.node, s.layer.Data), &s.use, ReasonNoIntegerOp, "activation read in float by "+s.node.GetOpType())
	}
	return nil
}

// recurrent quantizes a weight of an LSTM, GRU or RNN: an LSTM whose W
// and R are both slots, with symmetric weights and the default layout,
// becomes DynamicQuantizeLSTM when its W comes (its R then has nothing
// left to do); any other recurrent weight is stored as int8 and read
// through DequantizeLinear.
func (d *dynamic) recurrent(s weightSlot) (bool, error) {
	n, l := s.node, s.layer
	if d.converted[n] {
		return true, nil
	}
	if s.input == l.Weight && n.GetOpType() == "LSTM" && d.o.symmetric && onnx.IntAttr(n, "layout", 0) == 0 {
		if r, ok := d.slots[n][l.Recurrence]; ok {
			d.converted[n] = true
			return true, d.dynamicLSTM(s, r)
		}
	}
	return true, d.weightOnly(s)
}

// dynamicLSTM replaces an LSTM by com.microsoft DynamicQuantizeLSTM with
// W and R quantized to int8 per direction and gate unit (or one scale for
// all, per tensor), zero points 0, transposed to the [directions, K,
// 4*hidden] the kernel reads. The kernel multiplies its input, quantized
// to uint8, by the weights with u8s8 products, which saturate on CPUs
// without VNNI when a pair exceeds the int16 range; weights quantized to
// [-63, 63] cannot (255·63·2 < 32767), as onnxruntime's reduce_range
// does, so the model computes the same on every CPU.
func (d *dynamic) dynamicLSTM(w, r weightSlot) error {
	n := w.node
	inputs := append([]string{}, n.GetInput()...)
	for len(inputs) < 8 {
		inputs = append(inputs, "")
	}
	inputs = inputs[:8]
	for _, s := range []weightSlot{w, r} {
		data, err := floatData(s.weight)
		if err != nil {
			return fmt.Errorf("weight %q: %w", s.weight.name, err)
		}
		dims := s.weight.dims() // [directions, 4*hidden, K]
		dirs, rows, k := int(dims[0]), int(dims[1]), int(dims[2])
		scales := reducedScales(data, dirs*rows, k, d.o.perChannel)
		codes := make([]byte, len(data))
		for dir := range dirs {
			for row := range rows {
				sc := scales[dir*rows+row]
				for col := range k {
					v := math.RoundToEven(float64(data[(dir*rows+row)*k+col] / sc))
					codes[(dir*k+col)*rows+row] = byte(int8(min(max(v, -reducedMax), reducedMax)))
				}
			}
		}
		g, base := s.graph, s.weight.name
		qn, err := d.e.addInit(g, base+"_quantized", codesTensor(Int8, []int64{int64(dirs), int64(k), int64(rows)}, codes))
		if err != nil {
			return err
		}
		sn, err := d.e.addInit(g, base+"_scale", onnx.NewTensor([]int64{int64(dirs), int64(rows)}, scales))
		if err != nil {
			return err
		}
		zn, err := d.e.addInit(g, base+"_zero_point", codesTensor(Int8, []int64{int64(dirs), int64(rows)}, make([]byte, dirs*rows)))
		if err != nil {
			return err
		}
		inputs[s.input] = qn
		inputs = append(inputs, sn, zn)
		granularity := "per-tensor, 7-bit range"
		if d.o.perChannel {
			granularity = "per-channel(axis 1), 7-bit range"
		}
		d.r.Quantized = append(d.r.Quantized, QuantizedTensor{
			Name: s.weight.name, Node: onnx.Label(n), OpType: n.GetOpType(),
			Type: Int8.String(), Granularity: granularity, Elements: len(data),
		})
	}
	var attrs []*onnxpb.AttributeProto
	for _, a := range n.GetAttribute() {
		if a.GetName() != "layout" {
			attrs = append(attrs, a)
		}
	}
	d.e.insertBefore(n, newNode("DynamicQuantizeLSTM", msDomain, d.ix.fresh(onnx.Label(n)+"_quant"), inputs, n.GetOutput(), attrs...))
	d.e.remove(n)
	d.kernelInputs++
	return nil
}

// reducedMax is the largest code of weights quantized to a 7-bit range.
const reducedMax = 63

// reducedScales returns the symmetric scale of each of rows rows of cols
// values quantized to [-reducedMax, reducedMax], or of all of them alike.
func reducedScales(data []float32, rows, cols int, perRow bool) []float32 {
	absmax := make([]float32, rows)
	for r := range rows {
		for _, v := range data[r*cols : (r+1)*cols] {
			absmax[r] = max(absmax[r], float32(math.Abs(float64(v))))
		}
	}
	if !perRow {
		m := slices.Max(absmax)
		for r := range absmax {
			absmax[r] = m
		}
	}
	scales := make([]float32, rows)
	for r, m := range absmax {
		scales[r] = 1
		if m > 0 {
			scales[r] = m / reducedMax
		}
	}
	return scales
}

// transpose2D turns a [N, K] weight quantized along axis 0 into the [K, N]
// weight quantized along axis 1 that MatMulInteger multiplies by.
func transpose2D(q *Quantized) *Quantized {
	n, k := int(q.Shape[0]), int(q.Shape[1])
	t := *q
	t.Shape = []int64{int64(k), int64(n)}
	t.Data = make([]byte, len(q.Data))
	for i := range n {
		for j := range k {
			t.Data[j*n+i] = q.Data[i*k+j]
		}
	}
	if q.Axis == 0 {
		t.Axis = 1
	}
	return &t
}
