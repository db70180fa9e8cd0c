package quantize

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/fold"
	"github.com/kompress/kompress/runner/onnx"
)

// Reason says why a tensor was left in float.
type Reason string

// Why tensors stay in float.
const (
	ReasonExcludedNode    Reason = "excluded by node name"
	ReasonExcludedOpType  Reason = "excluded by op type"
	ReasonNotWeight       Reason = "not a weight input of a quantizable operator"
	ReasonUnsupportedOp   Reason = "operator has no quantized form for this method"
	ReasonSharedWeight    Reason = "shared with an input that is not a quantizable weight"
	ReasonNotFloat32      Reason = "not a float32 tensor"
	ReasonShape           Reason = "shape not supported by the quantized operator"
	ReasonTooSmall        Reason = "too small for 4-bit blocks"
	ReasonOverridable     Reason = "also a graph input, so callers may replace it"
	ReasonNoIntegerOp     Reason = "no integer kernel in ONNX Runtime: weight dequantized, computed in float"
	ReasonSubgraph        Reason = "inside a subgraph, where activations cannot be calibrated"
	ReasonNotCalibrated   Reason = "activation not seen in calibration"
	ReasonBias            Reason = "bias kept in float for this method"
	ReasonFP16Blocked     Reason = "operator kept in float32 by the float16 block list"
	ReasonNotFinite       Reason = "holds NaN or Inf"
	ReasonSensitive       Reason = "activation kept in float: quantizing it cost the most output fidelity"
	ReasonComputed        Reason = "weight computed at run time, not from constants alone"
	ReasonSensitiveWeight Reason = "kept in float: its 4-bit error cost the most output fidelity"
	ReasonRotary          Reason = "a rotary position cache (cos or sin of the positions), not a learned weight"
)

// Report says what Quantize did.
type Report struct {
	Method Method
	// Opset is the default-domain opset of the output model.
	Opset int64
	// Quantized lists the weights written in a lower precision.
	Quantized []QuantizedTensor
	// Float lists the tensors left in float, each with the reason.
	Float []FloatTensor
	// Activations is the number of activation tensors quantized (static)
	// or quantized at run time (dynamic).
	Activations int
	// CalibrationSamples is the number of samples static quantization
	// calibrated on.
	CalibrationSamples int
	// Fidelity is the mean output cosine of the quantized model against
	// the float model on held calibration batches (static, and 4-bit
	// weight-only's sensitivity guard).
	Fidelity float64
	// LowBitFidelity is that cosine with every weight at 4 bits, what
	// the guard started from (4-bit weight-only).
	LowBitFidelity float64 `json:",omitempty"`
	// Sensitive lists the weights 4-bit weight-only kept at 8 bits or in
	// float (quantize.sensitiveLayers), most sensitive first.
	Sensitive []SensitiveWeight `json:",omitempty"`
	// SmoothQuant says where static quantization's SmoothQuant option
	// moved activation outliers into weights, and where it did not.
	SmoothQuant *SmoothQuantReport `json:",omitempty"`
	// RemovedNodes counts nodes folded away (Relu into a quantized
	// output, an Add into a Conv bias).
	RemovedNodes int
	// Folded lists weights the model computed at run time from constants
	// alone, computed once and quantized as initializers.
	Folded []fold.Folded `json:",omitempty"`
	// Warnings say where the result misses the method's precision: layer
	// weights left in float for reasons the options did not give, weights
	// the sensitivity guard kept at 8 bits.
	Warnings []string `json:",omitempty"`

	// own names the initializers the method added (scales, zero points,
	// quantized data): not weights left in float.
	own map[string]bool
}

// QuantizedTensor is one weight written in a lower precision.
type QuantizedTensor struct {
	Name   string
	Node   string
	OpType string
	// Type is int8, uint8, int4, uint4, int32 (biases) or float16.
	Type string
	// Granularity is per-tensor, per-channel(axis N), block(N) or
	// matmulnbits(N).
	Granularity string
	Elements    int
	// Algorithm is "gptq" for weights GPTQ rounded; empty for round to
	// nearest.
	Algorithm string `json:",omitempty"`
}

// SensitiveWeight is a weight the 4-bit guard kept at higher precision.
type SensitiveWeight struct {
	Name   string
	Node   string
	OpType string
	// Kept is int8 or float.
	Kept     SensitiveLayers
	Elements int
	// Cosine is the mean output cosine to the float model with this
	// weight alone at 4 bits: the lower, the more sensitive.
	Cosine float64
}

// FloatTensor is one tensor left in float.
type FloatTensor struct {
	Name string
	// Node and OpType are the (first) consumer, when there is one.
	Node   string
	OpType string
	Reason Reason
	// Detail adds specifics (the operator, the shape).
	Detail string
}

// Summary is one line for logs and result messages: counts of quantized
// weights and of float tensors by reason.
func (r *Report) Summary() string {
	quantized := 0
	for _, q := range r.Quantized {
		quantized += q.Elements
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d weights (%d elements) quantized", r.Method, len(r.Quantized), quantized)
	if r.Activations > 0 {
		fmt.Fprintf(&b, ", %d activations", r.Activations)
	}
	if len(r.Sensitive) > 0 {
		fmt.Fprintf(&b, ", %d kept at %s by the 4-bit guard (output cosine %.4f, %.4f at 4 bits)", len(r.Sensitive), r.Sensitive[0].Kept, r.Fidelity, r.LowBitFidelity)
	}
	if sq := r.SmoothQuant; sq != nil {
		fmt.Fprintf(&b, ", SmoothQuant (alpha %g) on %d inputs", sq.Alpha, len(sq.Smoothed))
	}
	byReason := map[Reason]int{}
	for _, f := range r.Float {
		byReason[f.Reason]++
	}
	reasons := make([]string, 0, len(byReason))
	for reason, n := range byReason {
		reasons = append(reasons, fmt.Sprintf("%d %s", n, reason))
	}
	sort.Strings(reasons)
	if len(reasons) > 0 {
		fmt.Fprintf(&b, "; left in float: %s", strings.Join(reasons, ", "))
	}
	return b.String()
}

func (r *Report) addFloat(name string, consumer *use, reason Reason, detail string) {
	f := FloatTensor{Name: name, Reason: reason, Detail: detail}
	if consumer != nil {
		f.Node, f.OpType = onnx.Label(consumer.node), consumer.node.GetOpType()
	}
	r.Float = append(r.Float, f)
}
