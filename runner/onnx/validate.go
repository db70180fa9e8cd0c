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
//
// Tensors of data types this package does not know are checked for their
// dims only: they are passed through, never decoded.
func (m *Model) validate() error {
	v := validator{}
	v.graph(m.Proto.GetGraph(), "")
	for i, ti := range m.Proto.GetTrainingInfo() {
		v.graph(ti.GetInitialization(), "training_info["+strconv.Itoa(i)+"]/initialization")
		v.graph(ti.GetAlgorithm(), "training_info["+strconv.Itoa(i)+"]/algorithm")
	}
	for _, fn := range m.Proto.GetFunctions() {
		v.nodes(fn.GetNode(), "function "+fn.GetName())
	}
	if v.err != nil {
		return invalidf("%s: %w", m.label(), v.err)
	}
	return nil
}

// validator walks a model's tensors like everyTensor, naming where each
// one is for the message, and keeps the first error.
type validator struct{ err error }

func (v *validator) graph(g *onnxpb.GraphProto, path string) {
	if g == nil {
		return
	}
	for _, tp := range g.GetInitializer() {
		v.tensor(tp, fmt.Sprintf("initializer %q%s", tp.GetName(), inGraph(path)))
	}
	for _, st := range g.GetSparseInitializer() {
		v.sparse(st, fmt.Sprintf("sparse initializer %q%s", st.GetValues().GetName(), inGraph(path)))
	}
	v.nodes(g.GetNode(), path)
}

func (v *validator) nodes(ns []*onnxpb.NodeProto, path string) {
	for i, n := range ns {
		for _, a := range n.GetAttribute() {
			where := fmt.Sprintf("node %q attribute %q%s", NodeLabel(n, i), a.GetName(), inGraph(path))
			if a.T != nil {
				v.tensor(a.T, where)
			}
			for j, t := range a.GetTensors() {
				v.tensor(t, where+"["+strconv.Itoa(j)+"]")
			}
			if a.SparseTensor != nil {
				v.sparse(a.SparseTensor, where)
			}
			for j, st := range a.GetSparseTensors() {
				v.sparse(st, where+"["+strconv.Itoa(j)+"]")
			}
			sub := joinPath(path, NodeLabel(n, i)+"/"+a.GetName())
			if a.G != nil {
				v.graph(a.G, sub)
			}
			for _, g := range a.GetGraphs() {
				v.graph(g, sub)
			}
		}
	}
}

func (v *validator) tensor(tp *onnxpb.TensorProto, where string) {
	if v.err != nil {
		return
	}
	if err := checkTensor(tp); err != nil {
		v.err = fmt.Errorf("%s %s: %w", where, describe(tp, err), err)
	}
}

func (v *validator) sparse(st *onnxpb.SparseTensorProto, where string) {
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
		v.err = fmt.Errorf("%s %s: %w", where, describeSparse(st, err), err)
	}
}

// decodable reports whether this package decodes tensors of type t; others
// are passed through untouched.
func decodable(t DataType) bool { return ElemBits(t) != 0 || t == String }

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
