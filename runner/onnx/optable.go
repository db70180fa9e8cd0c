package onnx

import "github.com/kompress/kompress/runner/onnx/onnxpb"

// The operator table: for every operator that multiplies its input by a
// weight, which input is the weight, which the bias, and which axes of the
// weight hold the output and the input channels. Quantization, pruning,
// structured pruning, distillation and MAC counting all ask it instead of
// knowing operators themselves; each then decides which kinds it handles.
// Layouts follow the ONNX operator specification.

// LayerKind groups operators whose weights have the same layout and whose
// arithmetic is the same up to the number format.
type LayerKind string

// Layer kinds.
const (
	// LayerConv: Conv, ConvInteger, QLinearConv. W is [M, C/group, k...].
	LayerConv LayerKind = "conv"
	// LayerConvTranspose: W is [C, M/group, k...].
	LayerConvTranspose LayerKind = "convTranspose"
	// LayerGemm: B is [K, N], or [N, K] with transB; A is [M, K], or
	// [K, M] with transA.
	LayerGemm LayerKind = "gemm"
	// LayerMatMul: MatMul, MatMulInteger, QLinearMatMul, com.microsoft
	// MatMulNBits. B is [..., K, N] (MatMulNBits: packed [N, blocks, blob]).
	LayerMatMul LayerKind = "matMul"
	// LayerRecurrent: LSTM, GRU, RNN. W is [directions, gates*hidden,
	// input], R [directions, gates*hidden, hidden], B [directions,
	// 2*gates*hidden] (W's biases, then R's).
	LayerRecurrent LayerKind = "recurrent"
	// LayerEmbedding: Gather of a constant table, [rows, features] read
	// along the Gather axis.
	LayerEmbedding LayerKind = "embedding"
	// LayerAttention: com.microsoft Attention, whose weights are the
	// stacked Q, K and V projections [input hidden, 3*hidden].
	LayerAttention LayerKind = "attention"
)

// Layer is what the table says about one node. Input positions are -1
// where the operator has no such input.
type Layer struct {
	Kind LayerKind
	// Data is the input the weight multiplies (Gather: the indices).
	Data int
	// Weight is the weight's input (recurrent operators: W).
	Weight int
	// Bias is the per-output-channel bias's input.
	Bias int
	// Recurrence is a recurrent operator's R, the second weight.
	Recurrence int
	// Peephole is an LSTM's P [directions, 3*hidden].
	Peephole int
	// Quantized: the operator reads its weight as integer codes
	// (ConvInteger, QLinearConv, MatMulInteger, QLinearMatMul,
	// MatMulNBits), not as float values.
	Quantized bool
	// Packed: the weight is packed in blocks along K (MatMulNBits' B is
	// [N, blocks, blob bytes]).
	Packed bool
	// Group is a convolution's group attribute (1 elsewhere). A Conv's
	// weight axis 0 holds all M output channels; a ConvTranspose's axis 1
	// holds the M/group of one group (see Channels).
	Group int
	// TransA and TransB are a Gemm's attributes.
	TransA, TransB bool
	// Axis is a Gather's axis attribute as written (may be negative).
	Axis int
	// Directions (2 when bidirectional), Gates (LSTM 4, GRU 3, RNN 1) and
	// Hidden (the hidden_size attribute, 0 when absent) of a recurrent
	// operator.
	Directions, Gates, Hidden int
}

// layerEntry is one row of the table: what does not depend on attributes.
type layerEntry struct {
	kind                 LayerKind
	data, weight, bias   int
	recurrence, peephole int
	quantized, packed    bool
	gates                int
}

type opKey struct{ domain, op string }

// msDomain is ONNX Runtime's contrib operator domain.
const msDomain = "com.microsoft"

var layerTable = map[opKey]layerEntry{
	{"", "Conv"}:              {kind: LayerConv, data: 0, weight: 1, bias: 2, recurrence: -1, peephole: -1},
	{"", "ConvInteger"}:       {kind: LayerConv, data: 0, weight: 1, bias: -1, recurrence: -1, peephole: -1, quantized: true},
	{"", "QLinearConv"}:       {kind: LayerConv, data: 0, weight: 3, bias: 8, recurrence: -1, peephole: -1, quantized: true},
	{"", "ConvTranspose"}:     {kind: LayerConvTranspose, data: 0, weight: 1, bias: 2, recurrence: -1, peephole: -1},
	{"", "Gemm"}:              {kind: LayerGemm, data: 0, weight: 1, bias: 2, recurrence: -1, peephole: -1},
	{"", "MatMul"}:            {kind: LayerMatMul, data: 0, weight: 1, bias: -1, recurrence: -1, peephole: -1},
	{"", "MatMulInteger"}:     {kind: LayerMatMul, data: 0, weight: 1, bias: -1, recurrence: -1, peephole: -1, quantized: true},
	{"", "QLinearMatMul"}:     {kind: LayerMatMul, data: 0, weight: 3, bias: -1, recurrence: -1, peephole: -1, quantized: true},
	{msDomain, "MatMulNBits"}: {kind: LayerMatMul, data: 0, weight: 1, bias: 5, recurrence: -1, peephole: -1, quantized: true, packed: true},
	{"", "LSTM"}:              {kind: LayerRecurrent, data: 0, weight: 1, bias: 3, recurrence: 2, peephole: 7, gates: 4},
	{"", "GRU"}:               {kind: LayerRecurrent, data: 0, weight: 1, bias: 3, recurrence: 2, peephole: -1, gates: 3},
	{"", "RNN"}:               {kind: LayerRecurrent, data: 0, weight: 1, bias: 3, recurrence: 2, peephole: -1, gates: 1},
	{"", "Gather"}:            {kind: LayerEmbedding, data: 1, weight: 0, bias: -1, recurrence: -1, peephole: -1},
	{msDomain, "Attention"}:   {kind: LayerAttention, data: 0, weight: 1, bias: 2, recurrence: -1, peephole: -1},
}

// LayerOf looks a node up in the operator table; ok is false when its
// operator (in its domain: "" and "ai.onnx" are the default domain) reads
// no weight the table knows.
func LayerOf(n *onnxpb.NodeProto) (Layer, bool) {
	d := n.GetDomain()
	if IsDefaultDomain(d) {
		d = ""
	}
	e, ok := layerTable[opKey{d, n.GetOpType()}]
	if !ok {
		return Layer{}, false
	}
	l := Layer{
		Kind: e.kind, Data: e.data, Weight: e.weight, Bias: e.bias,
		Recurrence: e.recurrence, Peephole: e.peephole, Quantized: e.quantized, Packed: e.packed, Group: 1,
	}
	switch e.kind {
	case LayerConv, LayerConvTranspose:
		l.Group = int(IntAttr(n, "group", 1))
	case LayerGemm:
		l.TransA, l.TransB = IntAttr(n, "transA", 0) != 0, IntAttr(n, "transB", 0) != 0
	case LayerEmbedding:
		l.Axis = int(IntAttr(n, "axis", 0))
	case LayerRecurrent:
		l.Gates, l.Directions = e.gates, 1
		if StringAttr(n, "direction", "forward") == "bidirectional" {
			l.Directions = 2
		}
		l.Hidden = int(IntAttr(n, "hidden_size", 0))
	}
	return l, true
}

// Weights lists the inputs holding the layer's weight matrices: the
// weight, and a recurrent operator's R.
func (l Layer) Weights() []int {
	if l.Recurrence >= 0 {
		return []int{l.Weight, l.Recurrence}
	}
	return []int{l.Weight}
}

// WeightAxes returns the axes of a weight of the given rank (W, or R of a
// recurrent operator) that run along the output channels and along the
// input channels; ok is false when the operator cannot read a weight of
// that rank. A MatMul weight [..., K, N] has them last (batched weights
// keep their batch axes in front); a Gemm's follow transB; MatMulNBits'
// packed [N, blocks, blob] has K spread over axes 1 and 2 (in is 1); a
// recurrent weight's axis 0 is the direction.
func (l Layer) WeightAxes(rank int) (out, in int, ok bool) {
	switch l.Kind {
	case LayerConv:
		return 0, 1, rank >= 3
	case LayerConvTranspose:
		return 1, 0, rank >= 3
	case LayerGemm:
		if l.TransB {
			return 0, 1, rank == 2
		}
		return 1, 0, rank == 2
	case LayerMatMul:
		if l.Packed {
			return 0, 1, rank == 3
		}
		return rank - 1, rank - 2, rank >= 2
	case LayerRecurrent:
		return 1, 2, rank == 3
	case LayerEmbedding:
		axis := l.Axis
		if axis < 0 {
			axis += rank
		}
		return 1 - axis, axis, rank == 2 && (axis == 0 || axis == 1)
	case LayerAttention:
		return 1, 0, rank == 2
	}
	return 0, 0, false
}

// DataAxis is the axis of the data input (of the given rank) that holds
// the channels or features the weight's input axis multiplies; -1 when it
// has none (Gather's indices).
func (l Layer) DataAxis(rank int) int {
	switch l.Kind {
	case LayerConv, LayerConvTranspose:
		return 1
	case LayerGemm:
		if l.TransA {
			return 0
		}
		return 1
	case LayerRecurrent:
		return 2 // X is [seq, batch, input], or [batch, seq, input] with layout 1
	case LayerEmbedding:
		return -1
	}
	return rank - 1
}

// Channels returns the layer's output and input channel counts for a
// weight of dims: a grouped Conv's input channels and a grouped
// ConvTranspose's output channels are group times what the weight holds
// along the axis. ok is false when WeightAxes refuses the rank.
func (l Layer) Channels(dims []int64) (out, in int64, ok bool) {
	o, i, ok := l.WeightAxes(len(dims))
	if !ok {
		return 0, 0, false
	}
	out, in = dims[o], dims[i]
	switch l.Kind {
	case LayerConv:
		in *= int64(l.Group)
	case LayerConvTranspose:
		out *= int64(l.Group)
	}
	return out, in, true
}
