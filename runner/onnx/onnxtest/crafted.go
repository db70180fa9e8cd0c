package onnxtest

import (
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Crafted is a small, malformed model of one class of hostile input (issue
// 11): tensors whose dims overflow or describe far more data than the file
// holds, sparse tensors with missing parts or indices out of bounds. Every
// one must be refused as bad input, naming the tensor and what was
// expected, without a panic and without allocating what the dims claim.
type Crafted struct {
	// Name is a file name stem: testdata/crafted/<Name>.onnx.
	Name string
	// Class describes the input for docs/reliability.md.
	Class string
	Model *onnxpb.ModelProto
	// Want are substrings of the error: the tensor and what was expected.
	Want []string
	// Structural is set when the model's tensors are well-formed and its
	// structure is at fault (subgraph nesting), which Load and Stats
	// check, not the readers of tensors.
	Structural bool
}

// Bytes serializes the model (deterministically).
func (c Crafted) Bytes() []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.Model)
	if err != nil {
		panic(err)
	}
	return b
}

const (
	p31 = int64(1) << 31
	p40 = int64(1) << 40
	p62 = int64(1) << 62
)

// CraftedModels lists every crafted input class.
func CraftedModels() []Crafted {
	return []Crafted{
		{
			Name:  "matmul-weight-2p31x2p31",
			Class: "MatMul weight of dims [2^31, 2^31] and empty raw_data (element count overflowed, n*4 wrapped to 0 and matched the empty data)",
			Model: weightModel("MatMul", raw("W", onnx.Float, nil, p31, p31)),
			Want:  []string{`initializer "W"`, "[2147483648 2147483648]", "more than 1099511627776 elements"},
		},
		{
			Name:  "conv-weight-2p31x2p31",
			Class: "Conv weight of dims [2^31, 2^31, 1, 1] and empty raw_data (the same overflow, met in quantization's constant folding)",
			Model: weightModel("Conv", raw("W", onnx.Float, nil, p31, p31, 1, 1)),
			Want:  []string{`initializer "W"`, "[2147483648 2147483648 1 1]", "more than 1099511627776 elements"},
		},
		{
			Name:  "conv-weight-2p20x2p20",
			Class: "Conv weight of dims [2^20, 2^20, 1, 1] (2^40 elements, 4 TiB) and empty raw_data",
			Model: weightModel("Conv", raw("W", onnx.Float, nil, 1<<20, 1<<20, 1, 1)),
			Want:  []string{`initializer "W"`, "raw_data has 0 bytes, expected 4398046511104"},
		},
		{
			Name:  "weight-dims-2p62",
			Class: "initializer of dims [2^62] (what `inspect` read)",
			Model: weightModel("Add", raw("W", onnx.Float, nil, p62)),
			Want:  []string{`initializer "W"`, "[4611686018427387904]", "more than 1099511627776 elements"},
		},
		{
			Name:  "complex64-2p40",
			Class: "COMPLEX64 initializer of dims [2^40] and no float_data (allocated before the length check)",
			Model: weightModel("Add", &onnxpb.TensorProto{Name: proto.String("C"), DataType: dtype(onnx.Complex64), Dims: []int64{p40}}),
			Want:  []string{`initializer "C"`, "float_data has 0 values, expected 2199023255552"},
		},
		{
			Name:  "negative-dims",
			Class: "initializer with a negative dim",
			Model: weightModel("MatMul", raw("W", onnx.Float, nil, -1, 4)),
			Want:  []string{`initializer "W"`, "dim 0 is -1, expected >= 0"},
		},
		{
			Name:  "raw-data-mismatch",
			Class: "raw_data shorter than its dims",
			Model: weightModel("MatMul", raw("W", onnx.Float, make([]byte, 7), 2, 2)),
			Want:  []string{`initializer "W"`, "raw_data has 7 bytes, expected 16 (4 elements of 4 bytes)"},
		},
		{
			Name:  "constant-2p31x2p31",
			Class: "Constant node whose value has dims [2^31, 2^31] and empty raw_data",
			Model: constantModel(raw("", onnx.Float, nil, p31, p31)),
			Want:  []string{`node "const_w" attribute "value"`, "more than 1099511627776 elements"},
		},
		{
			Name:  "subgraph-raw-mismatch",
			Class: "initializer inside an If branch with raw_data of the wrong length",
			Model: subgraphModel(raw("W", onnx.Float, make([]byte, 3), 4)),
			Want:  []string{`initializer "W" in graph "if/then_branch"`, "raw_data has 3 bytes, expected 16"},
		},
		{
			Name:       "subgraphs-65-deep",
			Class:      "If branches nested 65 deep (every walk over the graphs costs depth squared: 3,000 levels in 60 KB took 65 GB of allocations in Stats)",
			Model:      NestedModel(65, "if"),
			Want:       []string{`node "if" attribute "then_branch": subgraphs nest more than 64 deep`},
			Structural: true,
		},
		{
			Name:       "subgraph-path-2kib",
			Class:      "If branches whose node names make a subgraph's path longer than 2 KiB (paths are copied into every deeper graph's)",
			Model:      NestedModel(3, strings.Repeat("n", 1000)),
			Want:       []string{`node "nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn..." attribute "then_branch"`, "longer than 2048 bytes"},
			Structural: true,
		},
		{
			Name:  "sparse-dims-4x2p40",
			Class: "sparse initializer of dims [4, 2^40] (Zeros on unchecked dims: out of memory)",
			Model: sparseModel(sparse("S", []int64{4, p40}, nil, nil)),
			Want:  []string{`sparse initializer "S"`, "[4 1099511627776]", "more than 1099511627776 elements"},
		},
		{
			Name:  "sparse-dense-4gib",
			Class: "sparse initializer whose dense form is 4 GiB (dims [2^30] FLOAT, no values)",
			Model: sparseModel(sparse("S", []int64{1 << 30}, nil, nil)),
			Want:  []string{`sparse initializer "S"`, "(4294967296 bytes), more than the 2147483647 bytes"},
		},
		{
			Name:  "sparse-negative-dims",
			Class: "sparse initializer with a negative dim",
			Model: sparseModel(sparse("S", []int64{-4, 4}, nil, nil)),
			Want:  []string{`sparse initializer "S"`, "dim 0 is -4, expected >= 0"},
		},
		{
			Name:  "sparse-no-values",
			Class: "sparse initializer without values (nil dereference)",
			Model: sparseModel(&onnxpb.SparseTensorProto{Dims: []int64{4}}),
			Want:  []string{`sparse initializer ""`, "values are missing"},
		},
		{
			Name:  "sparse-no-indices",
			Class: "sparse initializer with values and no indices",
			Model: sparseModel(&onnxpb.SparseTensorProto{Values: raw("S", onnx.Float, make([]byte, 8), 2), Dims: []int64{4}}),
			Want:  []string{`sparse initializer "S"`, "indices are missing for 2 values"},
		},
		{
			Name:  "sparse-index-out-of-range",
			Class: "sparse initializer with a linear index past its dims",
			Model: sparseModel(sparse("S", []int64{2, 2}, []int64{1, 9}, nil)),
			Want:  []string{`sparse initializer "S"`, "sparse index 9 is outside the 4 elements of dims [2 2]"},
		},
		{
			Name:  "sparse-coordinate-out-of-range",
			Class: "sparse initializer with a coordinate past its dim",
			Model: sparseModel(sparse("S", []int64{2, 2}, []int64{0, 1, 5, 0}, []int64{2, 2})),
			Want:  []string{`sparse initializer "S"`, "sparse index 1: coordinate 0 is 5, outside dim 2"},
		},
		{
			Name:  "sparse-more-values-than-elements",
			Class: "sparse initializer with more values than its dims hold",
			Model: sparseModel(sparse("S", []int64{1}, []int64{0, 0}, nil)),
			Want:  []string{`sparse initializer "S"`, "2 values for the 1 elements of dims [1]"},
		},
	}
}

func dtype(t onnx.DataType) *int32 { return proto.Int32(int32(t)) }

// raw is a tensor with raw_data (present, possibly empty).
func raw(name string, t onnx.DataType, data []byte, dims ...int64) *onnxpb.TensorProto {
	tp := &onnxpb.TensorProto{DataType: dtype(t), Dims: dims, RawData: append([]byte{}, data...)}
	if name != "" {
		tp.Name = proto.String(name)
	}
	return tp
}

// sparse is a FLOAT sparse tensor with one value per index (linear
// indices, or coordinates of idxDims [NNZ, rank]); no indices, no values.
func sparse(name string, dims, indices, idxDims []int64) *onnxpb.SparseTensorProto {
	nnz := len(indices)
	if idxDims != nil {
		nnz = int(idxDims[0])
	}
	st := &onnxpb.SparseTensorProto{Values: raw(name, onnx.Float, make([]byte, 4*nnz), int64(nnz)), Dims: dims}
	if indices != nil {
		if idxDims == nil {
			idxDims = []int64{int64(len(indices))}
		}
		st.Indices = &onnxpb.TensorProto{Name: proto.String(name + "_indices"), DataType: dtype(onnx.Int64), Dims: idxDims, Int64Data: indices}
	}
	return st
}

// model wraps nodes reading x (FLOAT [1, 4]) into y in an opset 13 model.
func model(g *onnxpb.GraphProto) *onnxpb.ModelProto {
	g.Name = proto.String("crafted")
	g.Input = append(g.Input, onnx.ValueInfo("x", onnx.Float, []onnx.Dim{1, 4}))
	g.Output = append(g.Output, onnx.ValueInfo("y", onnx.Float, nil))
	return onnx.NewModel(g, 13).Proto
}

// weightModel is op(x, W) with W the initializer tp.
func weightModel(op string, tp *onnxpb.TensorProto) *onnxpb.ModelProto {
	return model(&onnxpb.GraphProto{
		Node:        []*onnxpb.NodeProto{onnx.NewNode(op, op, []string{"x", tp.GetName()}, []string{"y"})},
		Initializer: []*onnxpb.TensorProto{tp},
	})
}

// constantModel is MatMul(x, W) with W a Constant node of value tp.
func constantModel(tp *onnxpb.TensorProto) *onnxpb.ModelProto {
	return model(&onnxpb.GraphProto{Node: []*onnxpb.NodeProto{
		onnx.NewNode("Constant", "const_w", nil, []string{"W"}, onnx.AttrTensor("value", tp)),
		onnx.NewNode("MatMul", "matmul", []string{"x", "W"}, []string{"y"}),
	}})
}

// sparseModel is MatMul(x, S) with S the sparse initializer st.
func sparseModel(st *onnxpb.SparseTensorProto) *onnxpb.ModelProto {
	return model(&onnxpb.GraphProto{
		Node:              []*onnxpb.NodeProto{onnx.NewNode("MatMul", "matmul", []string{"x", st.GetValues().GetName()}, []string{"y"})},
		SparseInitializer: []*onnxpb.SparseTensorProto{st},
	})
}

// subgraphModel is If(cond) with a then branch computing x + W, W the
// branch's initializer tp, and an else branch returning x.
func subgraphModel(tp *onnxpb.TensorProto) *onnxpb.ModelProto {
	branch := func(name string, nodes []*onnxpb.NodeProto, inits []*onnxpb.TensorProto) *onnxpb.GraphProto {
		return &onnxpb.GraphProto{Name: proto.String(name), Node: nodes, Initializer: inits,
			Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo(name+"_out", onnx.Float, nil)}}
	}
	then := branch("then", []*onnxpb.NodeProto{onnx.NewNode("Add", "add", []string{"x", tp.GetName()}, []string{"then_out"})}, []*onnxpb.TensorProto{tp})
	els := branch("else", []*onnxpb.NodeProto{onnx.NewNode("Identity", "id", []string{"x"}, []string{"else_out"})}, nil)
	g := &onnxpb.GraphProto{
		Input: []*onnxpb.ValueInfoProto{onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{})},
		Node: []*onnxpb.NodeProto{onnx.NewNode("If", "if", []string{"cond"}, []string{"y"},
			onnx.AttrGraph("then_branch", then), onnx.AttrGraph("else_branch", els))},
	}
	return model(g)
}

// NestedModel is a chain of depth If nodes named name, each holding the
// next in its then_branch, the innermost computing y = x.
func NestedModel(depth int, name string) *onnxpb.ModelProto {
	g := &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{onnx.NewNode("Identity", "id", []string{"x"}, []string{"y"})}}
	for range depth {
		g = &onnxpb.GraphProto{Node: []*onnxpb.NodeProto{onnx.NewNode("If", name, []string{"cond"}, []string{"y"}, onnx.AttrGraph("then_branch", g))}}
	}
	g.Input = []*onnxpb.ValueInfoProto{onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{})}
	return model(g)
}
