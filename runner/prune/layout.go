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

// layouts are the kinds of layer (the operator table's) prune handles,
// each with how it reads its weights as matrices (a recurrent layer has
// two: W and R). The other kinds of the table (embeddings, com.microsoft
// Attention) are left dense until they get an entry here.
var layouts = map[onnx.LayerKind]func(node *onnxpb.NodeProto, l onnx.Layer, dims []int64) (*layout, error){
	onnx.LayerConv:          convLayout,
	onnx.LayerConvTranspose: convLayout,
	onnx.LayerGemm:          matrixLayout,
	onnx.LayerMatMul:        matrixLayout,
	onnx.LayerRecurrent:     recurrentLayout,
}

// newLayout describes the weight input (dims as the node reads it) of a
// node of a kind in layouts.
func newLayout(node *onnxpb.NodeProto, dims []int64) (*layout, error) {
	l, ok := prunableLayer(node)
	if !ok {
		return nil, fmt.Errorf("operator %s has no weight layout", node.GetOpType())
	}
	return layouts[l.Kind](node, l, dims)
}

// matrixLayout is a 2-D weight (Gemm's B, MatMul's), one output unit per
// position along the table's output axis: a row of B [N, K] with transB,
// else a column of B [K, N].
func matrixLayout(node *onnxpb.NodeProto, l onnx.Layer, dims []int64) (*layout, error) {
	op := node.GetOpType()
	out, in, ok := l.WeightAxes(len(dims))
	if !ok || len(dims) != 2 {
		return nil, fmt.Errorf("%s weight has shape %v, expected 2 dimensions", op, dims)
	}
	// Row-major strides of the two axes.
	stride := [2]int{int(dims[1]), 1}
	so, si := stride[out], stride[in]
	return &layout{op: op, groups: 1, rows: int(dims[out]), cols: int(dims[in]), span: int(dims[in]), columns: "the input dimension K",
		at: func(_, r, c int) int { return r*so + c*si }}, nil
}

// recurrentLayout is an LSTM, GRU or RNN weight: W [directions,
// gates*hidden, input] or R [directions, gates*hidden, hidden], one matrix
// per direction whose rows are the gates' units and whose columns are the
// input features (W) or the hidden state (R) they read, so N:M groups run
// along those.
func recurrentLayout(node *onnxpb.NodeProto, l onnx.Layer, dims []int64) (*layout, error) {
	op := node.GetOpType()
	out, in, ok := l.WeightAxes(len(dims))
	if !ok || out != 1 || in != 2 {
		return nil, fmt.Errorf("%s weight has shape %v, expected [directions, gates*hidden, features]", op, dims)
	}
	d, rows, cols := int(dims[0]), int(dims[1]), int(dims[2])
	if d != l.Directions {
		return nil, fmt.Errorf("%s weight has shape %v: %d directions, but the node has %d", op, dims, d, l.Directions)
	}
	if l.Hidden > 0 && rows != l.Gates*l.Hidden {
		return nil, fmt.Errorf("%s weight has shape %v: %d rows, but %d gates of hidden_size %d make %d", op, dims, rows, l.Gates, l.Hidden, l.Gates*l.Hidden)
	}
	return &layout{op: op, groups: d, rows: rows, cols: cols, span: cols, columns: "the features each gate reads (input or hidden state)",
		at: func(g, r, c int) int { return (g*rows+r)*cols + c }}, nil
}

func convLayout(node *onnxpb.NodeProto, l onnx.Layer, dims []int64) (*layout, error) {
	op := node.GetOpType()
	outAxis, inAxis, ok := l.WeightAxes(len(dims))
	if !ok {
		return nil, fmt.Errorf("%s weight has shape %v, expected at least 3 dimensions", op, dims)
	}
	g := l.Group
	kernel := append([]int64{}, dims[2:]...)
	k := onnx.NumElements(kernel)
	if g < 1 || onnx.NumElements(dims) == 0 {
		return nil, fmt.Errorf("%s weight has shape %v and group %d", op, dims, g)
	}
	if l.Kind == onnx.LayerConv {
		// [O, I/g, k...]: group gi's outputs see input channels
		// gi*I/g .. (gi+1)*I/g.
		o, in := int(dims[outAxis]), int(dims[inAxis])
		if o%g != 0 {
			return nil, fmt.Errorf("%s weight has %d output channels, not a multiple of group %d", op, o, g)
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
	in, og := int(dims[inAxis]), int(dims[outAxis])
	if in%g != 0 {
		return nil, fmt.Errorf("%s weight has %d input channels, not a multiple of group %d", op, in, g)
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
