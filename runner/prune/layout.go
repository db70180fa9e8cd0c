package prune

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// layout is how an operator reads its weight as matrices, one per
// convolution group: rows are output units, columns input features, the
// way the operator lowered to a matrix product (GEMM) multiplies them. N:M
// groups and SparseGPT's column sweep both run along the columns.
//
// Column order puts the input dimension innermost, so N:M groups of
// consecutive columns run along input channels, as NVIDIA's 2:4 convention
// does (apex ASP permutes a Conv weight [O, I, kh, kw] to [kh, kw, O, I] and
// groups along I): for a Conv, column c is kernel position c / I and input
// channel c % I. Groups never cross a run of span columns (one kernel
// position); when span is not a multiple of M the last span % M columns of
// each run stay dense.
type layout struct {
	op         string
	groups     int
	rows, cols int // of each group's matrix
	span       int
	// at is the flat (row-major) index in the weight of element (r, c) of
	// group g's matrix.
	at func(g, r, c int) int
	// columns names what the N:M groups run along, for mask descriptions.
	columns string
	// kernel is the spatial kernel of a convolution.
	kernel []int64
}

// params is the number of weights the layout covers.
func (l *layout) params() int { return l.groups * l.rows * l.cols }

// newLayout describes the weight input (dims as the node reads it) of a
// Conv, ConvTranspose, Gemm or MatMul node.
func newLayout(node *onnxpb.NodeProto, dims []int64) (*layout, error) {
	op := node.GetOpType()
	switch op {
	case "Conv", "ConvTranspose":
		return convLayout(node, dims)
	case "Gemm", "MatMul":
		if len(dims) != 2 {
			return nil, fmt.Errorf("%s weight has shape %v, expected 2 dimensions", op, dims)
		}
		d0, d1 := int(dims[0]), int(dims[1])
		if op == "Gemm" && onnx.IntAttr(node, "transB", 0) != 0 {
			// B is [N, K]: each output unit's weights are a row.
			return &layout{op: op, groups: 1, rows: d0, cols: d1, span: d1, columns: "the input dimension K",
				at: func(_, r, c int) int { return r*d1 + c }}, nil
		}
		// B is [K, N]: each output unit's weights are a column.
		return &layout{op: op, groups: 1, rows: d1, cols: d0, span: d0, columns: "the input dimension K",
			at: func(_, r, c int) int { return c*d1 + r }}, nil
	}
	return nil, fmt.Errorf("operator %s has no weight layout", op)
}

func convLayout(node *onnxpb.NodeProto, dims []int64) (*layout, error) {
	op := node.GetOpType()
	if len(dims) < 3 {
		return nil, fmt.Errorf("%s weight has shape %v, expected at least 3 dimensions", op, dims)
	}
	g := int(onnx.IntAttr(node, "group", 1))
	kernel := append([]int64{}, dims[2:]...)
	k := onnx.NumElements(kernel)
	if g < 1 || onnx.NumElements(dims) == 0 {
		return nil, fmt.Errorf("%s weight has shape %v and group %d", op, dims, g)
	}
	if op == "Conv" {
		// [O, I/g, k...]: group gi's outputs see input channels
		// gi*I/g .. (gi+1)*I/g.
		o, in := int(dims[0]), int(dims[1])
		if o%g != 0 {
			return nil, fmt.Errorf("Conv weight has %d output channels, not a multiple of group %d", o, g)
		}
		og := o / g
		return &layout{
			op: op, groups: g, rows: og, cols: in * k, span: in, kernel: kernel,
			columns: "input channels, per output channel and kernel position",
			at: func(gi, r, c int) int {
				p, i := c/in, c%in
				return ((gi*og+r)*in+i)*k + p
			},
		}, nil
	}
	// ConvTranspose [I, O/g, k...]: each input channel scatters into O/g
	// output channels at k positions, so rows are (output channel, kernel
	// position) and columns input channels.
	in, og := int(dims[0]), int(dims[1])
	if in%g != 0 {
		return nil, fmt.Errorf("ConvTranspose weight has %d input channels, not a multiple of group %d", in, g)
	}
	ig := in / g
	return &layout{
		op: op, groups: g, rows: og * k, cols: ig, span: ig, kernel: kernel,
		columns: "input channels, per output channel and kernel position",
		at: func(gi, r, c int) int {
			return ((gi*ig+c)*og+r/k)*k + r%k
		},
	}, nil
}

// nmGroups returns the first column of every N:M group of m columns and
// the number of columns per row left out of any group.
func (l *layout) nmGroups(m int) (starts []int, dense int) {
	for run := 0; run+l.span <= l.cols; run += l.span {
		for c := run; c+m <= run+l.span; c += m {
			starts = append(starts, c)
		}
		dense += l.span % m
	}
	return starts, dense
}
