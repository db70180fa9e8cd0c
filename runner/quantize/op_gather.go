package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// gatherQuantizer is Gather of a constant 2-D table along axis 0: an
// embedding lookup (BERT's word, position and token-type tables, GPT's
// wte). Every method reads int8 rows and dequantizes only the rows it
// gathered, with one scale per feature: Gather(int8 table, ids) ->
// DequantizeLinear(axis -1), so a large vocabulary is never dequantized
// whole. 4-bit weight-only stores blocks along the features and reads them
// with com.microsoft GatherBlockQuantized, under format qdq and
// matmulnbits alike (MatMulNBits itself is a matrix product: no form).
type gatherQuantizer struct{ noQuantizer }

func (gatherQuantizer) quantizesWeight() bool { return true }

func (gatherQuantizer) weightAxis(ix *index, n *onnxpb.NodeProto, l onnx.Layer, c *constant) (int, Reason) {
	if len(c.dims()) != 2 || l.Axis != 0 || ix.consts[input(n, l.Data)] != nil {
		return 0, ReasonShape // a Gather of a constant is left to constant folding
	}
	if rotaryCache(c) {
		return 0, ReasonRotary
	}
	return 1, ""
}

func (gatherQuantizer) static(*index, *onnxpb.NodeProto) staticRole { return staticWeight }

func (gatherQuantizer) dynamic(d *dynamic, s weightSlot) (bool, error) {
	q, err := d.quantizeWeight(s, s.axis, d.o.perChannel)
	if err != nil {
		return false, err
	}
	w, err := storeWeight(d.e, s.graph, s.weight, q)
	if err != nil {
		return false, err
	}
	gatherThenDQ(d.e, s, w)
	d.reportWeight(s, q)
	return true, nil
}

func (gatherQuantizer) blocked() bool { return true }

func (gatherQuantizer) nbits(*editor, *index, weightSlot) (nbitsForm, Reason, string, error) {
	// MatMulNBits is a matrix product: weightOnly reads embeddings through
	// DequantizeLinear or GatherBlockQuantized under format matmulnbits too.
	return nbitsForm{}, ReasonUnsupportedOp, "MatMulNBits is a matrix product", nil
}

// embedding reports whether a slot is a Gather of a table.
func embedding(s weightSlot) bool { return s.layer.Kind == onnx.LayerEmbedding }

// gatherThenDQ makes an embedding Gather read the int8 table (per
// feature, or one scale) and dequantizes the rows it gathered: the
// Gather's output becomes DequantizeLinear's.
func gatherThenDQ(e *editor, s weightSlot, w *storedWeight) {
	n := s.node
	out := n.GetOutput()[0]
	rows := e.ix.fresh(out + "_quantized")
	n.Output[0] = rows
	n.Input[s.input] = w.inputs[0]
	var attrs []*onnxpb.AttributeProto
	if w.q.Axis >= 0 {
		attrs = append(attrs, onnx.AttrInt("axis", -1)) // the features of every gathered row
	}
	e.after[n] = append(e.after[n], newNode("DequantizeLinear", "", e.ix.fresh(out+"_DequantizeLinear"),
		append([]string{rows}, w.inputs[1:]...), []string{out}, attrs...))
}

// gatherBlocks replaces an embedding Gather by com.microsoft
// GatherBlockQuantized over the table's 4-bit blocks along its features.
func gatherBlocks(e *editor, o *options, s weightSlot, q *Quantized, r *Report) error {
	g, base, n := s.graph, s.weight.name, s.node
	data, err := e.addInit(g, base+"_quantized", q.tensor())
	if err != nil {
		return err
	}
	scale, err := e.addInit(g, base+"_scale", q.scaleTensor())
	if err != nil {
		return err
	}
	inputs := []string{data, input(n, s.layer.Data), scale}
	if !o.symmetric {
		zp, err := e.addInit(g, base+"_zero_point", q.zeroPointTensor())
		if err != nil {
			return err
		}
		inputs = append(inputs, zp)
	}
	e.insertBefore(n, newNode("GatherBlockQuantized", msDomain, e.ix.fresh(onnx.Label(n)+"_GatherBlockQuantized"), inputs, n.GetOutput(),
		onnx.AttrInt("gather_axis", 0), onnx.AttrInt("quantize_axis", 1), onnx.AttrInt("block_size", int64(o.blockSize))))
	e.remove(n)
	if e.ix.model.Opset(msDomain) == 0 {
		e.ix.model.SetOpset(msDomain, 1)
	}
	e.ix.model.RaiseIRVersion(10) // 4-bit tensors
	r.Quantized = append(r.Quantized, QuantizedTensor{
		Name: base, Node: onnx.Label(n), OpType: n.GetOpType(),
		Type: q.Type.String(), Granularity: fmt.Sprintf("block(%d, axis 1), GatherBlockQuantized", o.blockSize), Elements: len(q.Data),
	})
	return nil
}
