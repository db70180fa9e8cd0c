package onnx

import (
	"fmt"
	"strconv"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// validate checks every tensor stored in the model the way TensorFromProto
// and SparseToDense read it, without decoding or allocating anything: dims
// (CountElements), data inline and of the size the dims call for, sparse
// tensors whole with indices inside their dims and a dense form within
// MaxDenseBytes. Load and LoadFile run it, so a model they return holds no
// tensor whose reading could fail, panic or exhaust memory; the stages
// that read weights deep inside an algorithm never meet a malformed one.
// It also bounds subgraph nesting (MaxGraphDepth, MaxGraphPath): every
// walk over the model's graphs names each subgraph by its path, so deep
// or long chains would cost time and memory quadratic in the file's size.
//
// Tensors of data types this package does not know are checked for their
// dims only: they are passed through, never decoded.
func (m *Model) validate() error {
	v := validator{}
	v.graph(m.Proto.GetGraph(), "", 0)
	for i, ti := range m.Proto.GetTrainingInfo() {
		v.graph(ti.GetInitialization(), "training_info["+strconv.Itoa(i)+"]/initialization", 0)
		v.graph(ti.GetAlgorithm(), "training_info["+strconv.Itoa(i)+"]/algorithm", 0)
	}
	for _, fn := range m.Proto.GetFunctions() {
		v.nodes(fn.GetNode(), "function "+fn.GetName(), 0)
	}
	if v.err != nil {
		return invalidf("%s: %w", m.label(), v.err)
	}
	return nil
}

// Limits on subgraphs (If branches, Loop and Scan bodies).
const (
	// MaxGraphDepth is how deep subgraphs may nest: real models nest a
	// few levels.
	MaxGraphDepth = 64
	// MaxGraphPath bounds a subgraph's path (GraphRef.Path, the chain of
	// node names and attributes that holds it, which messages carry).
	MaxGraphPath = 2048
)

// validator walks a model's tensors like everyTensor and keeps the first
// error. Where a tensor is, is spelled out only for that error.
type validator struct{ err error }

func (v *validator) graph(g *onnxpb.GraphProto, path string, depth int) {
	if g == nil || v.err != nil {
		return
	}
	for _, tp := range g.GetInitializer() {
		v.tensor(tp, func() string { return fmt.Sprintf("initializer %q%s", tp.GetName(), inGraph(path)) })
	}
	for _, st := range g.GetSparseInitializer() {
		v.sparse(st, func() string { return fmt.Sprintf("sparse initializer %q%s", st.GetValues().GetName(), inGraph(path)) })
	}
	v.nodes(g.GetNode(), path, depth)
}

func (v *validator) nodes(ns []*onnxpb.NodeProto, path string, depth int) {
	for i, n := range ns {
		for _, a := range n.GetAttribute() {
			if v.err != nil {
				return
			}
			where := func() string {
				return fmt.Sprintf("node %q attribute %q%s", NodeLabel(n, i), a.GetName(), inGraph(path))
			}
			if a.T != nil {
				v.tensor(a.T, where)
			}
			for j, t := range a.GetTensors() {
				v.tensor(t, func() string { return where() + "[" + strconv.Itoa(j) + "]" })
			}
			if a.SparseTensor != nil {
				v.sparse(a.SparseTensor, where)
			}
			for j, st := range a.GetSparseTensors() {
				v.sparse(st, func() string { return where() + "[" + strconv.Itoa(j) + "]" })
			}
			if a.G == nil && len(a.GetGraphs()) == 0 {
				continue
			}
			switch label := NodeLabel(n, i); {
			case depth+1 > MaxGraphDepth:
				v.err = fmt.Errorf("node %q attribute %q: subgraphs nest more than %d deep", clip(label), clip(a.GetName()), MaxGraphDepth)
			case len(path)+1+len(label)+1+len(a.GetName()) > MaxGraphPath:
				v.err = fmt.Errorf("node %q attribute %q: the path of its subgraph (the node names and attributes that hold it) is longer than %d bytes", clip(label), clip(a.GetName()), MaxGraphPath)
			default:
				sub := joinPath(path, label+"/"+a.GetName())
				if a.G != nil {
					v.graph(a.G, sub, depth+1)
				}
				for _, g := range a.GetGraphs() {
					v.graph(g, sub, depth+1)
				}
			}
		}
	}
}

func (v *validator) tensor(tp *onnxpb.TensorProto, where func() string) {
	if v.err != nil {
		return
	}
	check := checkTensor
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		// Streamed (OpenSource): its bytes were checked against its
		// dims where they are, in the external file.
		check = func(tp *onnxpb.TensorProto) error { _, err := CountElements(tp.GetDims()); return err }
	}
	if err := check(tp); err != nil {
		v.err = fmt.Errorf("%s %s: %w", where(), describe(tp, err), err)
	}
}

func (v *validator) sparse(st *onnxpb.SparseTensorProto, where func() string) {
	if v.err != nil {
		return
	}
	var err error
	if values := st.GetValues(); values != nil && !decodable(DataType(values.GetDataType())) {
		// Not decoded, passed through as it is: only dims are checked.
		if _, err = CountElements(values.GetDims()); err == nil {
			_, err = CountElements(st.GetDims())
		}
	} else {
		err = checkSparse(st)
	}
	if err != nil {
		v.err = fmt.Errorf("%s %s: %w", where(), describeSparse(st, err), err)
	}
}

// decodable reports whether this package decodes tensors of type t; others
// are passed through untouched.
func decodable(t DataType) bool { return ElemBits(t) != 0 || t == String }

// clip shortens a name for a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

func inGraph(path string) string {
	if path == "" {
		return ""
	}
	return fmt.Sprintf(" in graph %q", path)
}

// checkTensor checks a dense tensor as TensorFromProto would read it.
// Tensors of unknown data types are checked for their dims only.
func checkTensor(tp *onnxpb.TensorProto) error {
	n, err := CountElements(tp.GetDims())
	if err != nil {
		return err
	}
	dt := DataType(tp.GetDataType())
	if !decodable(dt) {
		return nil // not decoded, passed through as it is
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return fmt.Errorf("data is in external file %q: load the model with LoadFile so the file is read", externalKey(tp, "location"))
	}
	if tp.Segment != nil {
		return fmt.Errorf("a segment of a larger tensor: segments are not supported")
	}
	return checkData(dt, tp, n)
}
