package onnx_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// layerAnswer is everything the table says about one node and a weight of
// the given dims.
type layerAnswer struct {
	Layer    onnx.Layer
	Found    bool
	Weights  []int
	Out, In  int
	AxesOK   bool
	OutCh    int64
	InCh     int64
	DataAxis int
}

func askTable(n *onnxpb.NodeProto, dims []int64, dataRank int) layerAnswer {
	l, ok := onnx.LayerOf(n)
	a := layerAnswer{Layer: l, Found: ok}
	if !ok {
		return a
	}
	a.Weights = l.Weights()
	a.Out, a.In, a.AxesOK = l.WeightAxes(len(dims))
	if a.AxesOK {
		a.OutCh, a.InCh, _ = l.Channels(dims)
	}
	a.DataAxis = l.DataAxis(dataRank)
	return a
}

func inDomain(n *onnxpb.NodeProto, domain string) *onnxpb.NodeProto {
	n.Domain = proto.String(domain)
	return n
}

func TestLayerOf(t *testing.T) {
	node := func(op string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return onnx.NewNode(op, "", []string{"x", "w"}, []string{"y"}, attrs...)
	}
	conv := onnx.Layer{Kind: onnx.LayerConv, Data: 0, Weight: 1, Bias: 2, Recurrence: -1, Peephole: -1, Group: 1}
	with := func(l onnx.Layer, f func(*onnx.Layer)) onnx.Layer { f(&l); return l }
	convT := with(conv, func(l *onnx.Layer) { l.Kind = onnx.LayerConvTranspose })
	gemm := with(conv, func(l *onnx.Layer) { l.Kind = onnx.LayerGemm })
	matMul := with(conv, func(l *onnx.Layer) { l.Kind, l.Bias = onnx.LayerMatMul, -1 })
	recurrent := onnx.Layer{Kind: onnx.LayerRecurrent, Data: 0, Weight: 1, Bias: 3, Recurrence: 2, Peephole: -1, Group: 1, Directions: 1}

	tests := []struct {
		name     string
		node     *onnxpb.NodeProto
		dims     []int64 // the weight
		dataRank int
		want     layerAnswer
	}{{
		name: "Conv", node: node("Conv"), dims: []int64{16, 8, 5, 5}, dataRank: 4,
		want: layerAnswer{Layer: conv, Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 16, InCh: 8, DataAxis: 1},
	}, {
		name: "Conv in ai.onnx", node: inDomain(node("Conv"), "ai.onnx"), dims: []int64{16, 8, 5, 5}, dataRank: 4,
		want: layerAnswer{Layer: conv, Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 16, InCh: 8, DataAxis: 1},
	}, {
		name: "grouped Conv: input channels are group x weight axis 1", node: node("Conv", onnx.AttrInt("group", 2)), dims: []int64{16, 4, 3, 3}, dataRank: 4,
		want: layerAnswer{Layer: with(conv, func(l *onnx.Layer) { l.Group = 2 }), Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 16, InCh: 8, DataAxis: 1},
	}, {
		name: "depthwise Conv", node: node("Conv", onnx.AttrInt("group", 8)), dims: []int64{8, 1, 3, 3}, dataRank: 4,
		want: layerAnswer{Layer: with(conv, func(l *onnx.Layer) { l.Group = 8 }), Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 8, InCh: 8, DataAxis: 1},
	}, {
		name: "Conv1d", node: node("Conv"), dims: []int64{6, 3, 5}, dataRank: 3,
		want: layerAnswer{Layer: conv, Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 6, InCh: 3, DataAxis: 1},
	}, {
		name: "Conv with a 2-D weight", node: node("Conv"), dims: []int64{6, 3}, dataRank: 4,
		want: layerAnswer{Layer: conv, Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: false, DataAxis: 1},
	}, {
		name: "ConvTranspose [C, M/group, k...]", node: node("ConvTranspose"), dims: []int64{4, 8, 3, 3}, dataRank: 4,
		want: layerAnswer{Layer: convT, Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 8, InCh: 4, DataAxis: 1},
	}, {
		name: "grouped ConvTranspose: output channels are group x weight axis 1", node: node("ConvTranspose", onnx.AttrInt("group", 2)), dims: []int64{4, 3, 3, 3}, dataRank: 4,
		want: layerAnswer{Layer: with(convT, func(l *onnx.Layer) { l.Group = 2 }), Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 6, InCh: 4, DataAxis: 1},
	}, {
		name: "Gemm B [K, N]", node: node("Gemm"), dims: []int64{256, 10}, dataRank: 2,
		want: layerAnswer{Layer: gemm, Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 1},
	}, {
		name: "Gemm transB: B [N, K]", node: node("Gemm", onnx.AttrInt("transB", 1)), dims: []int64{10, 256}, dataRank: 2,
		want: layerAnswer{Layer: with(gemm, func(l *onnx.Layer) { l.TransB = true }), Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 1},
	}, {
		name: "Gemm transA: A [K, M]", node: node("Gemm", onnx.AttrInt("transA", 1)), dims: []int64{256, 10}, dataRank: 2,
		want: layerAnswer{Layer: with(gemm, func(l *onnx.Layer) { l.TransA = true }), Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 0},
	}, {
		name: "Gemm with a 3-D weight", node: node("Gemm"), dims: []int64{2, 256, 10}, dataRank: 2,
		want: layerAnswer{Layer: gemm, Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: false, DataAxis: 1},
	}, {
		name: "MatMul B [K, N]", node: node("MatMul"), dims: []int64{256, 10}, dataRank: 2,
		want: layerAnswer{Layer: matMul, Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 1},
	}, {
		name: "MatMul batched B [batch, K, N]", node: node("MatMul"), dims: []int64{4, 64, 32}, dataRank: 3,
		want: layerAnswer{Layer: matMul, Found: true, Weights: []int{1}, Out: 2, In: 1, AxesOK: true, OutCh: 32, InCh: 64, DataAxis: 2},
	}, {
		name: "MatMul with a 1-D B has no output channels", node: node("MatMul"), dims: []int64{64}, dataRank: 2,
		want: layerAnswer{Layer: matMul, Found: true, Weights: []int{1}, Out: 0, In: -1, AxesOK: false, DataAxis: 1},
	}, {
		name: "MatMulInteger: input 2 is a zero point, not a bias", node: node("MatMulInteger"), dims: []int64{256, 10}, dataRank: 2,
		want: layerAnswer{Layer: with(matMul, func(l *onnx.Layer) { l.Quantized = true }), Found: true, Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 1},
	}, {
		name: "QLinearMatMul: b is input 3", node: node("QLinearMatMul"), dims: []int64{256, 10}, dataRank: 2,
		want: layerAnswer{Layer: with(matMul, func(l *onnx.Layer) { l.Quantized, l.Weight = true, 3 }), Found: true, Weights: []int{3}, Out: 1, In: 0, AxesOK: true, OutCh: 10, InCh: 256, DataAxis: 1},
	}, {
		name: "ConvInteger: input 2 is a zero point, not a bias", node: node("ConvInteger"), dims: []int64{16, 8, 5, 5}, dataRank: 4,
		want: layerAnswer{Layer: with(conv, func(l *onnx.Layer) { l.Quantized, l.Bias = true, -1 }), Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 16, InCh: 8, DataAxis: 1},
	}, {
		name: "QLinearConv: w is input 3, B input 8", node: node("QLinearConv"), dims: []int64{16, 8, 5, 5}, dataRank: 4,
		want: layerAnswer{Layer: with(conv, func(l *onnx.Layer) { l.Quantized, l.Weight, l.Bias = true, 3, 8 }), Found: true, Weights: []int{3}, Out: 0, In: 1, AxesOK: true, OutCh: 16, InCh: 8, DataAxis: 1},
	}, {
		name: "MatMulNBits packed [N, blocks, blob]", node: inDomain(node("MatMulNBits"), "com.microsoft"), dims: []int64{10, 8, 16}, dataRank: 2,
		want: layerAnswer{Layer: with(matMul, func(l *onnx.Layer) { l.Quantized, l.Packed, l.Bias = true, true, 5 }), Found: true, Weights: []int{1}, Out: 0, In: 1, AxesOK: true, OutCh: 10, InCh: 8, DataAxis: 1},
	}, {
		name: "MatMulNBits in the default domain is not ONNX Runtime's", node: node("MatMulNBits"), dims: []int64{10, 8, 16},
		want: layerAnswer{},
	}, {
		name: "LSTM bidirectional: W [2, 4*hidden, input]", node: node("LSTM", onnx.AttrString("direction", "bidirectional"), onnx.AttrInt("hidden_size", 20)),
		dims: []int64{2, 80, 10}, dataRank: 3,
		want: layerAnswer{Layer: with(recurrent, func(l *onnx.Layer) { l.Gates, l.Directions, l.Hidden, l.Peephole = 4, 2, 20, 7 }), Found: true,
			Weights: []int{1, 2}, Out: 1, In: 2, AxesOK: true, OutCh: 80, InCh: 10, DataAxis: 2},
	}, {
		name: "LSTM R [1, 4*hidden, hidden]", node: node("LSTM", onnx.AttrInt("hidden_size", 5)), dims: []int64{1, 20, 5}, dataRank: 3,
		want: layerAnswer{Layer: with(recurrent, func(l *onnx.Layer) { l.Gates, l.Hidden, l.Peephole = 4, 5, 7 }), Found: true,
			Weights: []int{1, 2}, Out: 1, In: 2, AxesOK: true, OutCh: 20, InCh: 5, DataAxis: 2},
	}, {
		name: "GRU: 3 gates", node: node("GRU", onnx.AttrInt("hidden_size", 8)), dims: []int64{1, 24, 16}, dataRank: 3,
		want: layerAnswer{Layer: with(recurrent, func(l *onnx.Layer) { l.Gates, l.Hidden = 3, 8 }), Found: true,
			Weights: []int{1, 2}, Out: 1, In: 2, AxesOK: true, OutCh: 24, InCh: 16, DataAxis: 2},
	}, {
		name: "RNN reverse: one gate, one direction", node: node("RNN", onnx.AttrString("direction", "reverse"), onnx.AttrInt("hidden_size", 8)), dims: []int64{1, 8, 16}, dataRank: 3,
		want: layerAnswer{Layer: with(recurrent, func(l *onnx.Layer) { l.Gates, l.Hidden = 1, 8 }), Found: true,
			Weights: []int{1, 2}, Out: 1, In: 2, AxesOK: true, OutCh: 8, InCh: 16, DataAxis: 2},
	}, {
		name: "Gather of an embedding table [rows, features]", node: node("Gather"), dims: []int64{1000, 64}, dataRank: 2,
		want: layerAnswer{Layer: onnx.Layer{Kind: onnx.LayerEmbedding, Data: 1, Weight: 0, Bias: -1, Recurrence: -1, Peephole: -1, Group: 1}, Found: true,
			Weights: []int{0}, Out: 1, In: 0, AxesOK: true, OutCh: 64, InCh: 1000, DataAxis: -1},
	}, {
		name: "Gather along axis -1", node: node("Gather", onnx.AttrInt("axis", -1)), dims: []int64{64, 1000}, dataRank: 2,
		want: layerAnswer{Layer: onnx.Layer{Kind: onnx.LayerEmbedding, Data: 1, Weight: 0, Bias: -1, Recurrence: -1, Peephole: -1, Group: 1, Axis: -1}, Found: true,
			Weights: []int{0}, Out: 0, In: 1, AxesOK: true, OutCh: 64, InCh: 1000, DataAxis: -1},
	}, {
		name: "com.microsoft Attention: stacked QKV [hidden, 3*hidden]", node: inDomain(node("Attention"), "com.microsoft"), dims: []int64{64, 192}, dataRank: 3,
		want: layerAnswer{Layer: with(gemm, func(l *onnx.Layer) { l.Kind = onnx.LayerAttention }), Found: true,
			Weights: []int{1}, Out: 1, In: 0, AxesOK: true, OutCh: 192, InCh: 64, DataAxis: 2},
	}, {
		name: "ai.onnx Attention reads no weight", node: node("Attention"), dims: []int64{64, 192},
		want: layerAnswer{},
	}, {
		name: "Conv of another domain", node: inDomain(node("Conv"), "com.example"), dims: []int64{16, 8, 5, 5},
		want: layerAnswer{},
	}, {
		name: "Relu", node: node("Relu"), dims: []int64{16},
		want: layerAnswer{},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, askTable(tc.node, tc.dims, tc.dataRank)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestLayerAxesFitLayouts checks every kind's axes against a weight laid
// out as the ONNX specification says: the element at output channel o and
// input channel i of a weight built from those indices must read back as
// (o, i) along the axes the table names.
func TestLayerAxesFitLayouts(t *testing.T) {
	tests := []struct {
		node *onnxpb.NodeProto
		// dims and the (output, input) channel of each flat index.
		dims []int64
		at   func(idx []int64) (o, i int64)
	}{
		{onnx.NewNode("Conv", "", nil, nil), []int64{3, 2, 2}, func(x []int64) (int64, int64) { return x[0], x[1] }},
		{onnx.NewNode("ConvTranspose", "", nil, nil), []int64{3, 2, 2}, func(x []int64) (int64, int64) { return x[1], x[0] }},
		{onnx.NewNode("Gemm", "", nil, nil), []int64{3, 2}, func(x []int64) (int64, int64) { return x[1], x[0] }},
		{onnx.NewNode("Gemm", "", nil, nil, onnx.AttrInt("transB", 1)), []int64{3, 2}, func(x []int64) (int64, int64) { return x[0], x[1] }},
		{onnx.NewNode("MatMul", "", nil, nil), []int64{4, 3, 2}, func(x []int64) (int64, int64) { return x[2], x[1] }},
		{onnx.NewNode("LSTM", "", nil, nil), []int64{2, 8, 3}, func(x []int64) (int64, int64) { return x[1], x[2] }},
	}
	for _, tc := range tests {
		l, _ := onnx.LayerOf(tc.node)
		out, in, ok := l.WeightAxes(len(tc.dims))
		if !ok {
			t.Fatalf("%s: WeightAxes(%d) not ok", tc.node.GetOpType(), len(tc.dims))
		}
		idx := make([]int64, len(tc.dims))
		for range onnx.NumElements(tc.dims) {
			o, i := tc.at(idx)
			if idx[out] != o || idx[in] != i {
				t.Errorf("%s %v: element %v is output %d input %d, the table reads output %d input %d", tc.node.GetOpType(), tc.dims, idx, o, i, idx[out], idx[in])
			}
			for d := len(idx) - 1; d >= 0; d-- {
				if idx[d]++; idx[d] < tc.dims[d] {
					break
				}
				idx[d] = 0
			}
		}
	}
}

func TestReshapeDims(t *testing.T) {
	tests := []struct {
		in, shape []int64
		allowZero bool
		want      []int64
		err       bool
		count     bool // the error is ErrReshapeCount
		invalid   bool // the error is ErrInvalid (bad input)
	}{
		{in: []int64{2, 5, 4}, shape: []int64{-1, 4}, want: []int64{10, 4}},
		{in: []int64{2, 5, 4}, shape: []int64{0, -1}, want: []int64{2, 20}},
		{in: []int64{2, 5, 4}, shape: []int64{40}, want: []int64{40}},
		{in: []int64{2, 0, 4}, shape: []int64{0, 8}, allowZero: true, want: []int64{0, 8}},
		{in: []int64{2, 0, 4}, shape: []int64{0, 8}, err: true, count: true},
		{in: []int64{2, 0, 4}, shape: []int64{4, 0}, allowZero: true, want: []int64{4, 0}},
		{in: []int64{2, 5, 4}, shape: []int64{3, -1}, err: true, count: true},
		{in: []int64{2, 5, 4}, shape: []int64{-1, -1}, err: true},
		{in: []int64{2, 5, 4}, shape: []int64{7}, err: true, count: true},
		{in: []int64{2, 5, 4}, shape: []int64{0, 0, 0, 0}, err: true},
		// Negative dimensions other than -1 are invalid, even when their
		// product would fit.
		{in: []int64{2, 3}, shape: []int64{-2, -3}, err: true},
		{in: []int64{2, 3}, shape: []int64{-6}, err: true},
		// Crafted targets whose dims multiply past 2^64 wrap around, in
		// unchecked int64 arithmetic, to the input's count: 3 x
		// 6148914691236517206 is 2 mod 2^64, (2^62+1) x 4 is 4.
		{in: []int64{2}, shape: []int64{3, 6148914691236517206}, err: true, invalid: true},
		{in: []int64{4}, shape: []int64{-1, 1<<62 + 1, 4}, err: true, invalid: true},
		{in: []int64{1}, shape: []int64{1 << 32, 1 << 32}, err: true, invalid: true},
		// Past the element cap without wrapping.
		{in: []int64{1 << 20, 1 << 20}, shape: []int64{1 << 21, 1 << 20}, err: true, invalid: true},
		{in: []int64{1 << 21, 1 << 20}, shape: []int64{-1}, err: true, invalid: true},
		// At the cap is fine; so are huge dims beside a zero.
		{in: []int64{1 << 20, 1 << 20}, shape: []int64{-1, 1 << 10}, want: []int64{1 << 30, 1 << 10}},
		{in: []int64{0, 3}, shape: []int64{0, 1 << 62}, allowZero: true, want: []int64{0, 1 << 62}},
	}
	for _, tc := range tests {
		got, err := onnx.ReshapeDims(tc.in, tc.shape, tc.allowZero)
		if (err != nil) != tc.err || errors.Is(err, onnx.ErrReshapeCount) != tc.count || errors.Is(err, onnx.ErrInvalid) != tc.invalid {
			t.Errorf("ReshapeDims(%v, %v) error %v, want error %v (count %v, invalid %v)", tc.in, tc.shape, err, tc.err, tc.count, tc.invalid)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ReshapeDims(%v, %v) (-want +got):\n%s", tc.in, tc.shape, diff)
		}
	}
}

func TestLabelAndDomain(t *testing.T) {
	if got := onnx.Label(onnx.NewNode("Conv", "conv1", []string{"x"}, []string{"y"})); got != "conv1" {
		t.Errorf("Label of a named node = %q, want its name", got)
	}
	if got := onnx.Label(onnx.NewNode("Conv", "", []string{"x"}, []string{"y", "z"})); got != "Conv([y z])" {
		t.Errorf("Label of an unnamed node = %q, want op type and outputs", got)
	}
	for d, want := range map[string]bool{"": true, "ai.onnx": true, "com.microsoft": false, "ai.onnx.ml": false} {
		if got := onnx.IsDefaultDomain(d); got != want {
			t.Errorf("IsDefaultDomain(%q) = %v, want %v", d, got, want)
		}
	}
}
