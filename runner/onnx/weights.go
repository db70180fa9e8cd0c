package onnx

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// WeightKind says where a weight is stored.
type WeightKind string

const (
	// KindInitializer is an entry of a graph's initializer list.
	KindInitializer WeightKind = "initializer"
	// KindSparseInitializer is an entry of a graph's sparse_initializer list.
	KindSparseInitializer WeightKind = "sparse_initializer"
	// KindConstant is the value of a Constant node (any of its value
	// attributes: value, sparse_value, value_float(s), value_int(s)).
	KindConstant WeightKind = "constant"
)

// Weight is a constant tensor of the model, wherever it is stored: the main
// graph or a subgraph (If branches, Loop/Scan bodies), an initializer, a
// sparse initializer or a Constant node. Read it with Tensor or Float32s,
// replace it with Set.
type Weight struct {
	Name  string
	DType DataType
	Dims  []int64
	Kind  WeightKind
	// Graph is the graph that holds the weight.
	Graph GraphRef
	// Node is the Constant node, for KindConstant.
	Node *onnxpb.NodeProto
	// External is the external data file the weight was read from when
	// the model was loaded ("" when it was inline).
	External string
	// Uses lists the nodes that read the weight, in its graph and in
	// subgraphs that capture it by name.
	Uses []Use

	tp     *onnxpb.TensorProto       // initializer, or the Constant's value tensor
	src    Source                    // where a streamed tp's external file is (OpenFile)
	sparse *onnxpb.SparseTensorProto // sparse initializer or sparse_value
	attr   *onnxpb.AttributeProto    // the Constant's value attribute
}

// NumElements is the product of Dims.
func (w *Weight) NumElements() int { return NumElements(w.Dims) }

// Weights lists every weight of the model: initializers, sparse
// initializers and Constant node values of the main graph and of every
// subgraph, in graph order (parents first).
func (m *Model) Weights() []*Weight {
	var out []*Weight
	for _, ref := range m.Graphs() {
		ix := IndexGraph(ref.Graph, ref.Path)
		add := func(w *Weight) {
			w.Graph = ref
			w.Uses = ix.Consumers[w.Name]
			if w.tp != nil {
				w.External = m.external[w.tp]
				w.src = m.src
			}
			out = append(out, w)
		}
		for _, tp := range ref.Graph.GetInitializer() {
			add(&Weight{Name: tp.GetName(), DType: DataType(tp.GetDataType()), Dims: tp.GetDims(), Kind: KindInitializer, tp: tp})
		}
		for _, st := range ref.Graph.GetSparseInitializer() {
			add(&Weight{Name: st.GetValues().GetName(), DType: DataType(st.GetValues().GetDataType()), Dims: st.GetDims(), Kind: KindSparseInitializer, sparse: st})
		}
		for _, n := range ref.Graph.GetNode() {
			if n.GetOpType() != "Constant" || !IsDefaultDomain(n.GetDomain()) || len(n.GetOutput()) != 1 || len(n.GetAttribute()) != 1 {
				continue
			}
			w := &Weight{Name: n.GetOutput()[0], Kind: KindConstant, Node: n, attr: n.GetAttribute()[0]}
			if !w.describeConstant() {
				continue // value_string(s): not a numeric weight
			}
			add(w)
		}
	}
	return out
}

// IsDefaultDomain reports whether an operator domain is ONNX's default
// one ("" or "ai.onnx").
func IsDefaultDomain(d string) bool { return d == "" || d == "ai.onnx" }

// describeConstant fills DType and Dims from a Constant's attribute.
func (w *Weight) describeConstant() bool {
	a := w.attr
	switch a.GetName() {
	case "value":
		if a.T == nil {
			return false
		}
		w.tp, w.DType, w.Dims = a.T, DataType(a.T.GetDataType()), a.T.GetDims()
	case "sparse_value":
		if a.SparseTensor == nil {
			return false
		}
		w.sparse = a.SparseTensor
		w.DType, w.Dims = DataType(a.SparseTensor.GetValues().GetDataType()), a.SparseTensor.GetDims()
	case "value_float":
		w.DType, w.Dims = Float, []int64{}
	case "value_floats":
		w.DType, w.Dims = Float, []int64{int64(len(a.GetFloats()))}
	case "value_int":
		w.DType, w.Dims = Int64, []int64{}
	case "value_ints":
		w.DType, w.Dims = Int64, []int64{int64(len(a.GetInts()))}
	default:
		return false
	}
	return true
}

// Tensor decodes the weight (sparse weights come back dense).
func (w *Weight) Tensor() (*Tensor, error) {
	var (
		t   *Tensor
		err error
	)
	switch {
	case w.tp != nil && w.tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL && w.src != nil:
		t, err = readStreamedTensor(w.tp, w.src)
	case w.tp != nil:
		t, err = TensorFromProto(w.tp)
	case w.sparse != nil:
		t, err = SparseToDense(w.sparse)
	default:
		switch w.attr.GetName() {
		case "value_float":
			t = NewTensor([]int64{}, []float32{w.attr.GetF()})
		case "value_floats":
			t = NewTensor(w.Dims, append([]float32{}, w.attr.GetFloats()...))
		case "value_int":
			t = NewTensor([]int64{}, []int64{w.attr.GetI()})
		case "value_ints":
			t = NewTensor(w.Dims, append([]int64{}, w.attr.GetInts()...))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("weight %q (%s in graph %q): %w", w.Name, w.Kind, w.Graph.Path, err)
	}
	return t, nil
}

// Float32s reads the weight's values as float32 (see Tensor.Float32s).
func (w *Weight) Float32s() ([]float32, error) {
	t, err := w.Tensor()
	if err != nil {
		return nil, err
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", w.Name, err)
	}
	return f, nil
}

// Set replaces the weight's data, and with it possibly its type and dims,
// where it is stored. A Constant keeps its node and output name but holds
// the new tensor in its value attribute; a sparse initializer becomes a
// dense initializer of the same name (see Sparsify to store it sparse
// again). Declared types of the name (graph inputs, value_info) follow.
func (w *Weight) Set(t *Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("weight %q: %w", w.Name, err)
	}
	g := w.Graph.Graph
	switch {
	case w.Kind == KindSparseInitializer:
		tp, err := TensorToProto(t, w.Name)
		if err != nil {
			return err
		}
		for i, st := range g.SparseInitializer {
			if st == w.sparse {
				g.SparseInitializer = append(g.SparseInitializer[:i], g.SparseInitializer[i+1:]...)
				break
			}
		}
		g.Initializer = append(g.Initializer, tp)
		w.Kind, w.tp, w.sparse = KindInitializer, tp, nil
	case w.Kind == KindConstant && w.tp == nil:
		tp, err := TensorToProto(t, "")
		if err != nil {
			return err
		}
		tp.Name = nil
		*w.attr = onnxpb.AttributeProto{Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tp}
		w.tp, w.sparse = tp, nil
	default:
		if err := SetProtoData(w.tp, t); err != nil {
			return err
		}
	}
	w.DType, w.Dims, w.External = t.DType, append([]int64{}, t.Dims...), ""
	retype(g, w.Name, t.DType, t.Dims)
	return nil
}

// retype updates the declared type of name in g's inputs and value_info
// when its element type or dims changed.
func retype(g *onnxpb.GraphProto, name string, dt DataType, dims []int64) {
	for _, list := range [][]*onnxpb.ValueInfoProto{g.GetInput(), g.GetValueInfo(), g.GetOutput()} {
		for _, v := range list {
			if v.GetName() != name || v.GetType().GetTensorType() == nil {
				continue
			}
			fresh := ValueInfo(name, dt, dimsOf(dims))
			v.Type = fresh.Type
		}
	}
}

func dimsOf(dims []int64) []Dim {
	out := make([]Dim, len(dims))
	for i, d := range dims {
		out[i] = d
	}
	return out
}

// Weight finds a weight by name in the main graph; nil when there is none.
func (m *Model) Weight(name string) *Weight {
	for _, w := range m.Weights() {
		if w.Name == name && w.Graph.Path == "" {
			return w
		}
	}
	return nil
}
