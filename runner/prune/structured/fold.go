package structured

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// reshapeOps only change how a tensor's data is shaped, not the data.
var reshapeOps = map[string]bool{"Reshape": true, "Flatten": true, "Squeeze": true, "Unsqueeze": true, "Identity": true}

// foldWeightReshapes replaces each reshape-like node whose inputs are all
// weights with a weight holding its result (mnist-8 reshapes its MatMul
// weight from [16,4,4,10] to [256,10] at run time). The rules then see the
// weight a layer really multiplies by, whatever produced it. It returns the
// weights the folded nodes read, for removeUnused.
func foldWeightReshapes(gr *graph) ([]string, error) {
	outputs := map[string]bool{}
	for _, o := range gr.g.GetOutput() {
		outputs[o.GetName()] = true
	}
	declared := map[string]*onnxpb.ValueInfoProto{}
	for _, in := range gr.g.GetInput() {
		declared[in.GetName()] = in
	}
	var read []string
	var keep []*onnxpb.NodeProto
	for _, n := range gr.g.GetNode() {
		src := gr.weight(n, 0)
		shape, known := gr.shapes[output(n, 0)]
		if !reshapeOps[n.GetOpType()] || !onnx.IsDefaultDomain(n.GetDomain()) || src == nil || !known || outputs[output(n, 0)] || !allWeights(gr, n) || len(n.GetOutput()) != 1 {
			keep = append(keep, n)
			continue
		}
		t, err := src.Tensor()
		if err != nil {
			return nil, fmt.Errorf("weight %q: %w", src.Name, err)
		}
		t = &onnx.Tensor{DType: t.DType, Dims: append([]int64(nil), shape...), Data: t.Data}
		tp, err := onnx.TensorToProto(t, output(n, 0))
		if err != nil {
			return nil, fmt.Errorf("folding %s: %w", gr.label[n], err)
		}
		gr.g.Initializer = append(gr.g.Initializer, tp)
		// Models of IR version 3 declare every initializer as an input too.
		if declared[src.Name] != nil {
			gr.g.Input = append(gr.g.Input, onnx.ValueInfo(tp.GetName(), t.DType, dimsOf(shape)))
		}
		for _, in := range n.GetInput() {
			if in != "" {
				read = append(read, in)
			}
		}
	}
	if len(read) > 0 {
		gr.g.Node = keep
	}
	return read, nil
}

func allWeights(gr *graph, n *onnxpb.NodeProto) bool {
	for i, in := range n.GetInput() {
		if in != "" && gr.weight(n, i) == nil {
			return false
		}
	}
	return true
}

func dimsOf(dims []int64) []onnx.Dim {
	out := make([]onnx.Dim, len(dims))
	for i, d := range dims {
		out[i] = int(d)
	}
	return out
}

// removeUnused deletes the named main-graph weights that nothing reads any
// more (initializers, their input declarations, Constant nodes).
func removeUnused(m *onnx.Model, names []string) {
	g := m.Proto.GetGraph()
	ix := onnx.IndexGraph(g, "")
	dead := map[string]bool{}
	for _, name := range names {
		if len(ix.Consumers[name]) == 0 && ix.Output[name] == nil {
			dead[name] = true
		}
	}
	if len(dead) == 0 {
		return
	}
	var inits []*onnxpb.TensorProto
	for _, t := range g.GetInitializer() {
		if !dead[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	var ins []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if !dead[in.GetName()] {
			ins = append(ins, in)
		}
	}
	g.Input = ins
	var nodes []*onnxpb.NodeProto
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" && dead[output(n, 0)] {
			continue
		}
		nodes = append(nodes, n)
	}
	g.Node = nodes
	var vis []*onnxpb.ValueInfoProto
	for _, vi := range g.GetValueInfo() {
		if !dead[vi.GetName()] {
			vis = append(vis, vi)
		}
	}
	g.ValueInfo = vis
}
