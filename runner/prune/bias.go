package prune

import (
	"github.com/kompress/kompress/runner/onnx"
)

// Hessian pruning also updates a layer's bias, where it has one: the bias
// is the weight of a constant input 1, so it joins the OBS problem as one
// more column of W (and of H), last in the sweep and never pruned. It takes
// up the shift of each output's mean that removing weights causes, which
// plain SparseGPT leaves in place; on networks fed inputs far from zero
// mean (raw pixels) that shift is most of the error.

// findBias returns the bias of a target's single node, when it has one
// that only this node reads: its bias input in the operator table (a
// Conv's B, a Gemm's C with one value per output unit), or the constant
// operand of the one Add that reads the node's output, broadcast along
// the output units. ConvTranspose is left
// out: its outputs sum over several input pixels, so its bias is not the
// weight of one constant input of the matrix product.
func findBias(main *onnx.GraphIndex, weights map[string]*onnx.Weight, t *target) *onnx.Weight {
	if len(t.uses) != 1 || t.uses[0].graph != "" {
		return nil
	}
	node := t.uses[0].node
	l, _ := onnx.LayerOf(node)
	if l.Kind == onnx.LayerConvTranspose {
		return nil
	}
	units := t.lay.rows * t.lay.groups
	// Output rank and the axis of the output units.
	rank, axis := 2+len(t.lay.kernel), 1
	if l.Kind != onnx.LayerConv {
		rank, axis = 2, 1 // [M, N]: units along the last axis
	}
	if l.Kind == onnx.LayerGemm && (onnx.FloatAttr(node, "alpha", 1) != 1 || onnx.FloatAttr(node, "beta", 1) != 1) {
		// alpha·A·B + beta·C: C is not the weight of a constant 1 next to
		// B's rows unless both are 1.
		return nil
	}
	if in := node.GetInput(); l.Bias >= 0 && l.Bias < len(in) && in[l.Bias] != "" {
		b := weights[in[l.Bias]]
		// Conv's B is [O]; Gemm's C broadcasts against [M, N].
		if b == nil || len(b.Uses) != 1 || l.Kind == onnx.LayerConv && !perUnit(b.Dims, units, 1, 0) || l.Kind == onnx.LayerGemm && !perUnit(b.Dims, units, 2, 1) {
			return nil
		}
		return floatWeight(b)
	}
	outName := node.GetOutput()[0]
	readers := main.Consumers[outName]
	if main.Output[outName] != nil || len(readers) != 1 {
		return nil
	}
	add := readers[0].Node
	if add.GetOpType() != "Add" || len(add.GetInput()) != 2 || readers[0].GraphPath != "" {
		return nil
	}
	b := weights[add.GetInput()[1-readers[0].Input]]
	if b == nil || len(b.Uses) != 1 || b.Graph.Path != "" {
		return nil
	}
	if l.Kind == onnx.LayerMatMul {
		// MatMul's output may have any rank >= 2: the bias broadcasts
		// along the last axis alone.
		if !perUnit(b.Dims, units, len(b.Dims), len(b.Dims)-1) {
			return nil
		}
	} else if !perUnit(b.Dims, units, rank, axis) {
		return nil
	}
	return floatWeight(b)
}

// perUnit reports whether a tensor of dims, broadcast against an output of
// rank dimensions, holds one value per unit along axis: right-aligned, its
// dimension at axis is units and every other one is 1.
func perUnit(dims []int64, units, rank, axis int) bool {
	if len(dims) > rank || len(dims) < rank-axis {
		return false
	}
	for i, d := range dims {
		a := rank - len(dims) + i
		if a == axis && d != int64(units) || a != axis && d != 1 {
			return false
		}
	}
	return true
}

func floatWeight(w *onnx.Weight) *onnx.Weight {
	if w.DType != onnx.Float && w.DType != onnx.Float16 && w.DType != onnx.BFloat16 {
		return nil
	}
	return w
}
