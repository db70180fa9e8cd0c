package feed

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// Input is a graph input a caller feeds.
type Input struct {
	Name string
	// DType is the ONNX element type; Undefined when the input is not a
	// tensor or declares no type.
	DType onnx.DataType
	// Dims has -1 for dynamic dimensions; nil when the graph declares no
	// shape, empty for a scalar.
	Dims []int64
}

// Inputs lists the main graph's inputs a caller feeds, in graph order:
// old models also list their initializers as inputs, dense or sparse (a
// pruned IR 3 model keeps listing a weight it now stores sparse), and
// those are not fed.
func Inputs(m *onnx.Model) []Input {
	g := m.Proto.GetGraph()
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	var ins []Input
	for _, vi := range g.GetInput() {
		if inits[vi.GetName()] {
			continue
		}
		in := Input{Name: vi.GetName()}
		dt, dims, _, ok := onnx.TensorType(vi)
		in.DType = dt
		if ok {
			in.Dims = dims
			if dims == nil {
				in.Dims = []int64{}
			}
		}
		ins = append(ins, in)
	}
	return ins
}

// fromSession converts the inputs ONNX Runtime reports (the same graph
// inputs as Inputs).
func fromSession(infos []ort.IOInfo) []Input {
	ins := make([]Input, len(infos))
	for i, in := range infos {
		ins[i] = Input{Name: in.Name, DType: in.DType, Dims: in.Shape}
	}
	return ins
}

// String renders the shape as "[N 1 28 28]": N for the batch dimension
// (fixed or not), ? for other dynamic ones; "[]" for a scalar, "?" when
// undeclared.
func (in Input) String() string {
	if in.Dims == nil {
		return "?"
	}
	parts := make([]string, len(in.Dims))
	for i, d := range in.Dims {
		switch {
		case i == 0:
			parts[i] = "N"
		case d < 0:
			parts[i] = "?"
		default:
			parts[i] = fmt.Sprint(d)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// scalar reports whether the input is declared a scalar.
func (in Input) scalar() bool { return in.Dims != nil && len(in.Dims) == 0 }

// fixedBatch is the batch the input fixes on dimension 0, or 0.
func (in Input) fixedBatch() int {
	if len(in.Dims) > 0 && in.Dims[0] > 0 {
		return int(in.Dims[0])
	}
	return 0
}

// wholeMayHoldBatch reports whether an input fed whole declares a
// dynamic dimension, which may be the batch (a state [2, N, 128]).
func (in Input) wholeMayHoldBatch() bool {
	return !in.scalar() && slices.ContainsFunc(in.Dims, func(d int64) bool { return d < 0 })
}

// Names lists the inputs' names.
func Names(ins []Input) []string {
	out := make([]string, len(ins))
	for i, in := range ins {
		out[i] = in.Name
	}
	return out
}

func find(ins []Input, name string) (Input, bool) {
	for _, in := range ins {
		if in.Name == name {
			return in, true
		}
	}
	return Input{}, false
}
