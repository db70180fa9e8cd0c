package quantize

import (
	"errors"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// The operator registry, after onnxruntime's quantization registry.py: one
// entry per operator type says what every method does with its nodes.
// Where a weight is (its input, its axes) is runner/onnx's operator table;
// what to do with it is here. An operator without an entry stays in float,
// reported with ReasonUnsupportedOp.
//
// Adding an operator is one file with its quantizer (embed noQuantizer and
// override what applies) and one register line in init below.

// quantizer is what quantization does with one operator type.
type quantizer interface {
	// quantizesWeight reports whether the operator's weight (where the
	// operator table puts it) is quantized.
	quantizesWeight() bool
	// weightAxis checks the float32 weight c that n reads at l.Weight and
	// returns the axis of its per-channel scales (its output channels), or
	// the reason it stays in float.
	weightAxis(ix *index, n *onnxpb.NodeProto, l onnx.Layer, c *constant) (axis int, reason Reason)
	// static is the node's part in static (QDQ) quantization.
	static(ix *index, n *onnxpb.NodeProto) staticRole
	// dynamic rewrites one weight slot for dynamic quantization; replaced
	// says whether the node stopped reading the float weight.
	dynamic(d *dynamic, s weightSlot) (replaced bool, err error)
	// blocked reports whether weight-only format qdq stores the weight as
	// blocks read through DequantizeLinear (block_size), blocked along the
	// operator table's input-channel axis.
	blocked() bool
	// nbits readies a slot for weight-only format matmulnbits (com.microsoft
	// MatMulNBits): the alpha its scales take and the bias it reads; a
	// reason (and a detail) when the node has no MatMulNBits form.
	nbits(e *editor, ix *index, s weightSlot) (f nbitsForm, reason Reason, detail string, err error)
	// fold says what the node absorbs before any method runs.
	fold() foldRole
	// foldConstant computes the node when all its inputs are constants
	// (returning nil leaves it in the graph); nil when it is never folded.
	foldConstant() constantFolder
}

// staticRole is a node's part in static quantization.
type staticRole int

const (
	// staticNone: computed in float from float inputs.
	staticNone staticRole = iota
	// staticWeight: int8 weight read through DequantizeLinear, computed
	// in float (no integer kernel in ONNX Runtime).
	staticWeight
	// staticInteger: its data input and weight go through Q/DQ and its
	// output through Q/DQ again, which ONNX Runtime fuses into an integer
	// kernel.
	staticInteger
	// staticIntegerFloatOutput: staticInteger whose output is quantized
	// only when a reader takes it quantized (QGemm may keep a float
	// output, so logits are not quantized).
	staticIntegerFloatOutput
	// staticPassThrough: moves or selects values without computing new
	// ones; after a quantized output it stays between Q/DQ pairs with the
	// same parameters, which ONNX Runtime drops.
	staticPassThrough
	// staticActivation: right after a quantized node (and its only
	// reader), removed, its range folded into the output's
	// QuantizeLinear.
	staticActivation
)

// integer reports whether the role runs on an integer kernel.
func (r staticRole) integer() bool { return r == staticInteger || r == staticIntegerFloatOutput }

// foldRole is what a node absorbs before quantization, as onnxruntime's
// quantization pre-processing does.
type foldRole int

const (
	foldNone foldRole = iota
	// foldChannels: an Add of a per-output-channel constant after it
	// becomes its bias; a BatchNormalization after it is folded into its
	// weight and bias.
	foldChannels
	// foldGemm: with an Add of a constant [N] after it and a 2-D input, it
	// becomes a Gemm.
	foldGemm
)

// constantFolder computes a node from constant inputs (nil entries for
// absent optional inputs); it returns nil when it leaves that form alone.
type constantFolder func(n *onnxpb.NodeProto, in []*onnx.Tensor) (*onnx.Tensor, error)

// nbitsForm is what MatMulNBits takes from the node besides the weight.
type nbitsForm struct {
	// alpha scales the product (Gemm's alpha), folded into the scales.
	alpha float32
	// bias is the name of a constant [N] added to the product, or "".
	bias string
}

// noQuantizer leaves an operator in float under every method. Entries
// embed it and override what their operator does.
type noQuantizer struct{}

func (noQuantizer) quantizesWeight() bool { return false }
func (noQuantizer) weightAxis(*index, *onnxpb.NodeProto, onnx.Layer, *constant) (int, Reason) {
	return 0, ReasonUnsupportedOp
}
func (noQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticNone }
func (noQuantizer) dynamic(*dynamic, weightSlot) (bool, error) {
	return false, errNoForm
}
func (noQuantizer) blocked() bool { return false }
func (noQuantizer) nbits(*editor, *index, weightSlot) (nbitsForm, Reason, string, error) {
	return nbitsForm{}, ReasonUnsupportedOp, "format matmulnbits covers MatMul and Gemm", nil
}
func (noQuantizer) fold() foldRole               { return foldNone }
func (noQuantizer) foldConstant() constantFolder { return nil }

var errNoForm = errors.New("operator has no quantized form")

// quantizers is the registry, by op type (default domain).
var quantizers = map[string]quantizer{}

func register(op string, q quantizer) { quantizers[op] = q }

func init() {
	register("Conv", convQuantizer{})
	register("ConvTranspose", convTransposeQuantizer{})
	register("MatMul", matMulQuantizer{})
	register("Gemm", gemmQuantizer{})
	register("LSTM", recurrentQuantizer{})
	register("GRU", recurrentQuantizer{})
	register("RNN", recurrentQuantizer{})
	register("Gather", gatherQuantizer{})

	register("MaxPool", movement{passes: true})
	register("Reshape", movement{passes: true, eval: foldReshape})
	register("Flatten", movement{passes: true, eval: foldFlatten})
	register("Transpose", movement{passes: true, eval: transposeTensor})
	register("Squeeze", movement{passes: true, eval: leftToRuntime})
	register("Unsqueeze", movement{passes: true, eval: leftToRuntime})
	register("Identity", movement{eval: foldIdentity})

	register("Relu", reluQuantizer{})
	register("Clip", clipQuantizer{})
}

// quantizerOf is the registry's entry for a node: noQuantizer for
// operators of other domains and unregistered ones.
func quantizerOf(n *onnxpb.NodeProto) quantizer {
	if q, ok := quantizers[n.GetOpType()]; ok && onnx.IsDefaultDomain(n.GetDomain()) {
		return q
	}
	return noQuantizer{}
}

// weightLayer returns the operator table's layer of a node whose weight
// the registry quantizes.
func weightLayer(n *onnxpb.NodeProto) (quantizer, onnx.Layer, bool) {
	q := quantizerOf(n)
	if !q.quantizesWeight() {
		return q, onnx.Layer{}, false
	}
	l, ok := onnx.LayerOf(n)
	return q, l, ok
}
