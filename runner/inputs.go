package runner

import (
	"strings"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// modelInputs are the graph inputs a caller feeds: old models also list
// their initializers as inputs, dense or sparse (a pruned IR 3 model keeps
// listing a weight it now stores sparse), and those are not fed.
func modelInputs(m *onnx.Model) []dataset.Input {
	g := m.Proto.GetGraph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	var ins []dataset.Input
	for _, vi := range g.GetInput() {
		if inits[vi.GetName()] {
			continue
		}
		in := dataset.Input{Name: vi.GetName()}
		if dt, dims, _, ok := onnx.TensorType(vi); ok {
			in.ElemType = numpyName(dt)
			in.Shape = dims
		}
		ins = append(ins, in)
	}
	return ins
}

// firstInput names the input a dataset feeds.
func firstInput(in *StageInput) string {
	if ins := modelInputs(in.Model); len(ins) > 0 {
		return ins[0].Name
	}
	return ""
}

// numpyName is the NumPy name of an ONNX element type, as dataset.Input
// expects.
func numpyName(dt onnx.DataType) string {
	switch dt {
	case onnx.Float:
		return dataset.Float32
	case onnx.Double:
		return "float64"
	}
	return strings.ToLower(dt.String())
}

// batchSize is the batch size to feed the model: preferred, unless the
// model fixes its batch dimension (mnist-8 takes exactly 1).
func batchSize(in *StageInput, preferred int) int {
	if ins := modelInputs(in.Model); len(ins) > 0 && len(ins[0].Shape) > 0 && ins[0].Shape[0] > 0 {
		return int(ins[0].Shape[0])
	}
	return preferred
}
