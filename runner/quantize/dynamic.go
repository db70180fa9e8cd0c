package quantize

import (
	"fmt"

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
	d := &dynamic{e: newEditor(ix, r.own), ix: ix, o: o, r: r, dql: map[dqlKey]*dqlOutputs{}}
	left := pendingReaders(slots)
	for _, s := range slots {
		replaced, err := quantizerOf(s.node).dynamic(d, s)
		if err != nil {
			return fmt.Errorf("%s: %w", onnx.Label(s.node), err)
		}
		left.done(s, replaced)
	}
	r.Activations = len(d.dql)
	d.e.apply()
	removeDeadConstants(m)
	return nil
}

type dynamic struct {
	e   *editor
	ix  *index
	o   *options
	r   *Report
	dql map[dqlKey]*dqlOutputs
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
	d.r.Quantized = append(d.r.Quantized, QuantizedTensor{
		Name: s.weight.name, Node: onnx.Label(s.node), OpType: s.node.GetOpType(),
		Type: q.Type.String(), Granularity: q.granularity(), Elements: len(q.Data),
	})
}

func (d *dynamic) matMul(s weightSlot) error {
	q, err := d.quantizeWeight(s, s.axis, d.o.perChannel)
	if err != nil {
		return err
	}
	return d.integerMatMulWith(s, q, 1, "")
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
	d.r.addFloat(input(s.node, s.layer.Data), &s.use, ReasonNoIntegerOp, "activation read in float by "+s.node.GetOpType())
	return nil
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
