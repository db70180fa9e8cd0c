package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// weightSlot is a node input that holds a quantizable weight.
type weightSlot struct {
	use
	weight *constant
	// layer is what the operator table says about the node.
	layer onnx.Layer
	// axis is the weight's output-channel axis (per-channel quantization).
	axis int
	// integer: the node's activations are quantized too (static) or at run
	// time (dynamic); otherwise only the weight is.
	integer bool
}

// weightOf returns the weight a node whose operator the registry
// quantizes reads at input i (one of the operator table's weight inputs:
// the weight, a recurrent operator's R), its output-channel axis, and why
// it cannot be quantized when it cannot ("" when it can, nil constant
// when the input is not a constant at all).
func weightOf(ix *index, n *onnxpb.NodeProto, q quantizer, l onnx.Layer, i int) (*constant, int, Reason) {
	c := ix.consts[input(n, i)]
	if c == nil {
		return nil, 0, ""
	}
	if c.dtype() != onnx.Float {
		return c, 0, ReasonNotFloat32
	}
	axis, reason := q.weightAxis(ix, n, l, c)
	return c, axis, reason
}

// weightSlots finds every weight a method may quantize, applying the
// exclusions, and records in r why the others stay in float. A weight is
// quantized only if every reader is such a slot with the same axis; one
// reader that wants the float values keeps it in float for all.
func weightSlots(ix *index, o *options, r *Report, decided map[string]bool) []weightSlot {
	var slots []weightSlot
	byWeight := map[string][]int{}
	for _, ref := range ix.graphs {
		for _, n := range ref.Graph.GetNode() {
			q, l, ok := weightLayer(n)
			if !ok {
				continue
			}
			for _, i := range l.Weights() {
				c, axis, reason := weightOf(ix, n, q, l, i)
				if c == nil {
					continue
				}
				u := use{graph: ref.Graph, node: n, input: i}
				if reason == "" {
					reason = o.excluded(n.GetOpType(), n.GetName())
				}
				if reason == "" && c.overridable {
					reason = ReasonOverridable
				}
				if reason != "" {
					if !decided[c.name] {
						r.addFloat(c.name, &u, reason, fmt.Sprintf("%s weight %v", n.GetOpType(), c.dims()))
						decided[c.name] = true
					}
					continue
				}
				byWeight[c.name] = append(byWeight[c.name], len(slots))
				slots = append(slots, weightSlot{use: u, weight: c, layer: l, axis: axis})
			}
		}
	}
	keep := make([]weightSlot, 0, len(slots))
	for _, s := range slots {
		if decided[s.weight.name] {
			continue
		}
		if len(ix.uses[s.weight.name]) != len(byWeight[s.weight.name]) || !sameAxis(slots, byWeight[s.weight.name]) || ix.outputs[s.weight.name] {
			r.addFloat(s.weight.name, &s.use, ReasonSharedWeight, fmt.Sprintf("%d readers", len(ix.uses[s.weight.name])))
			decided[s.weight.name] = true
			continue
		}
		keep = append(keep, s)
	}
	return keep
}

func sameAxis(slots []weightSlot, idx []int) bool {
	for _, i := range idx[1:] {
		if slots[i].axis != slots[idx[0]].axis || slots[i].node.GetOpType() != slots[idx[0]].node.GetOpType() || slots[i].input != slots[idx[0]].input {
			return false
		}
	}
	return true
}

// storedWeight is a quantized weight written as initializers, shared by the
// DequantizeLinear nodes of all its readers.
type storedWeight struct {
	q *Quantized
	// inputs of DequantizeLinear: data, scale and, unless it is all zero
	// and may be left out, zero point.
	inputs []string
}

// tensor is the data as the ONNX tensor of its type.
func (q *Quantized) tensor() *onnx.Tensor {
	return codesTensor(q.Type, q.Shape, q.Data)
}

// zeroPointTensor is the zero points in the type of the data.
func (q *Quantized) zeroPointTensor() *onnx.Tensor {
	codes := make([]byte, len(q.ZeroPoints))
	for i, z := range q.ZeroPoints {
		codes[i] = byte(z)
	}
	return codesTensor(q.Type, q.ScaleShape, codes)
}

func (q *Quantized) scaleTensor() *onnx.Tensor {
	return onnx.NewTensor(append([]int64{}, q.ScaleShape...), q.Scales)
}

// codesTensor wraps one-byte codes as an onnx.Tensor of the QType.
func codesTensor(t QType, dims []int64, codes []byte) *onnx.Tensor {
	dims = append([]int64{}, dims...)
	switch t {
	case Int8, Int4:
		d := make([]int8, len(codes))
		for i, c := range codes {
			if t == Int4 {
				d[i] = int8(c<<4) >> 4
			} else {
				d[i] = int8(c)
			}
		}
		dt := onnx.Int8
		if t == Int4 {
			dt = onnx.Int4
		}
		return &onnx.Tensor{DType: dt, Dims: dims, Data: d}
	case UInt4:
		// The codes themselves, not a copy: the quantizers' unsigned
		// 4-bit codes are in [0, 15], and the tensor goes into an
		// initializer, whose packing takes values modulo 16 anyway.
		return &onnx.Tensor{DType: onnx.Uint4, Dims: dims, Data: codes}
	}
	return &onnx.Tensor{DType: onnx.Uint8, Dims: dims, Data: append([]uint8{}, codes...)}
}

// allZero reports whether every zero point is 0.
func (q *Quantized) allZero() bool {
	for _, z := range q.ZeroPoints {
		if z != 0 {
			return false
		}
	}
	return true
}

// granularity describes q for reports.
func (q *Quantized) granularity() string {
	switch {
	case q.BlockSize > 0:
		return fmt.Sprintf("block(%d, axis %d)", q.BlockSize, q.Axis)
	case q.Axis >= 0:
		return fmt.Sprintf("per-channel(axis %d)", q.Axis)
	}
	return "per-tensor"
}

// floatData reads a constant's values as float32, rejecting NaN and Inf.
func floatData(c *constant) ([]float32, error) {
	v, err := floats(c)
	if err != nil {
		return nil, err
	}
	for _, x := range v {
		if !isFinite32(x) {
			return nil, errNotFinite
		}
	}
	return v, nil
}

var errNotFinite = fmt.Errorf("weight holds NaN or Inf")

// floats reads a constant's values as float32, NaN and Inf included.
func floats(c *constant) ([]float32, error) {
	t, err := c.tensor()
	if err != nil {
		return nil, err
	}
	return t.Float32s()
}

// dqNode makes a DequantizeLinear node reading a quantized weight.
func dqNode(name string, inputs []string, out string, axis, blockSize int) *onnxpb.NodeProto {
	var attrs []*onnxpb.AttributeProto
	if axis >= 0 {
		attrs = append(attrs, onnx.AttrInt("axis", int64(axis)))
	}
	if blockSize > 0 {
		attrs = append(attrs, onnx.AttrInt("block_size", int64(blockSize)))
	}
	return newNode("DequantizeLinear", "", name, inputs, []string{out}, attrs...)
}

// storeWeight writes q as initializers in g, the graph of the node that
// reads it (ONNX Runtime's DequantizeLinear fusions look for the quantized
// weight in the reader's own graph, not in an enclosing one). An all-zero int4 zero point is left out (a missing zero point is
// 0 of the data's type), which halves the size of small blocks' metadata;
// 8-bit zero points are always written, as ONNX Runtime's own quantizer
// does, so its QDQ fusions see the form they were written for.
func storeWeight(e *editor, g *onnxpb.GraphProto, c *constant, q *Quantized) (*storedWeight, error) {
	data, err := e.addInit(g, c.name+"_quantized", q.tensor())
	if err != nil {
		return nil, err
	}
	scale, err := e.addInit(g, c.name+"_scale", q.scaleTensor())
	if err != nil {
		return nil, err
	}
	inputs := []string{data, scale}
	if !(q.allZero() && q.Type == Int4) {
		zp, err := e.addInit(g, c.name+"_zero_point", q.zeroPointTensor())
		if err != nil {
			return nil, err
		}
		inputs = append(inputs, zp)
	}
	return &storedWeight{q: q, inputs: inputs}, nil
}

// readThroughDQ makes u read the weight through its own DequantizeLinear.
func readThroughDQ(e *editor, u use, w *storedWeight, name string) {
	out := e.ix.fresh(name + "_dequantized")
	e.insertBefore(u.node, dqNode(e.ix.fresh(name+"_DequantizeLinear"), w.inputs, out, w.q.Axis, w.q.BlockSize))
	u.node.Input[u.input] = out
}

// releaseData drops a replaced float weight's data as soon as its quantized
// form exists, so a model's weights are not held twice while the rest is
// quantized; the emptied constant is removed when the edits are applied.
func releaseData(c *constant) {
	for _, t := range c.graph.GetInitializer() {
		if t.GetName() == c.name {
			t.RawData, t.FloatData = nil, nil
			return
		}
	}
	for _, n := range c.graph.GetNode() {
		if n.GetOpType() == "Constant" && len(n.GetOutput()) == 1 && n.GetOutput()[0] == c.name {
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					a.T.RawData, a.T.FloatData = nil, nil
				}
			}
			return
		}
	}
}

// readersLeft counts, per weight, the slots not yet rewritten, and whether
// all rewritten ones stopped reading the float data.
type readersLeft struct {
	left      map[string]int
	stillRead map[string]bool
}

func pendingReaders(slots []weightSlot) *readersLeft {
	l := &readersLeft{left: map[string]int{}, stillRead: map[string]bool{}}
	for _, s := range slots {
		l.left[s.weight.name]++
	}
	return l
}

// done records that slot s was rewritten (replaced: it no longer reads the
// float weight) and releases the weight's data after its last reader.
func (l *readersLeft) done(s weightSlot, replaced bool) {
	if !replaced {
		l.stillRead[s.weight.name] = true
	}
	l.left[s.weight.name]--
	if l.left[s.weight.name] == 0 && !l.stillRead[s.weight.name] {
		releaseData(s.weight)
	}
}
