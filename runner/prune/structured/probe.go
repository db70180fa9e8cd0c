package structured

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"math/rand/v2"
	"strings"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
)

// probeSeed makes synthesized probe inputs the same on every run.
const probeSeed = 0x7374727563747572

// feedInputs are the graph inputs a caller feeds: declared inputs that are
// not initializers (old models declare their weights as inputs too).
func feedInputs(g *onnxpb.GraphProto) []*onnxpb.ValueInfoProto {
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	var out []*onnxpb.ValueInfoProto
	for _, in := range g.GetInput() {
		if !inits[in.GetName()] {
			out = append(out, in)
		}
	}
	return out
}

// probeInputs makes the inputs of the run that reveals tensor shapes: the
// first calibration sample when there is calibration data, else
// deterministic values in [0, 1) at opts.InputShapes or the declared shape
// with batch 1 and DefaultDynamicDim for other dynamic dimensions.
func probeInputs(m *onnx.Model, opts Options) (map[string]*onnx.Tensor, error) {
	ins := feedInputs(m.Proto.GetGraph())
	if opts.Calibration != nil {
		if len(ins) != 1 {
			return nil, fmt.Errorf("%s takes %d inputs; calibration data feeds exactly one", m.Name, len(ins))
		}
		d, err := fitInput(m, ins[0], opts.Calibration)
		if err != nil {
			return nil, err
		}
		return map[string]*onnx.Tensor{ins[0].GetName(): batchTensor(d, 0, batchOf(ins[0], 1))}, nil
	}
	for name := range opts.InputShapes {
		found := false
		for _, in := range ins {
			found = found || in.GetName() == name
		}
		if !found {
			return nil, fmt.Errorf("structured pruning: inputShapes names %q, which is not an input of %s", name, m.Name)
		}
	}
	rng := rand.New(rand.NewPCG(probeSeed, probeSeed))
	out := map[string]*onnx.Tensor{}
	for _, in := range ins {
		dt, dims, _, ok := onnx.TensorType(in)
		if !ok {
			return nil, fmt.Errorf("%s: input %q declares no tensor shape; give its shape in inputShapes", m.Name, in.GetName())
		}
		if s, ok := opts.InputShapes[in.GetName()]; ok {
			if len(s) != len(dims) {
				return nil, fmt.Errorf("structured pruning: inputShapes[%q] = %v has rank %d, the input has rank %d", in.GetName(), s, len(s), len(dims))
			}
			dims = s
		}
		dims = append([]int64(nil), dims...)
		for i, d := range dims {
			if d <= 0 {
				dims[i] = DefaultDynamicDim
				if i == 0 {
					dims[i] = 1
				}
			}
		}
		vals := make([]float32, onnx.NumElements(dims))
		if onnx.IsFloat(dt) {
			for i := range vals {
				vals[i] = rng.Float32()
			}
		}
		t, err := onnx.FromFloat32s(dt, dims, vals)
		if err != nil {
			return nil, fmt.Errorf("%s: input %q: %w", m.Name, in.GetName(), err)
		}
		out[in.GetName()] = t
	}
	return out, nil
}

// fitInput checks the calibration data against the model input.
func fitInput(m *onnx.Model, in *onnxpb.ValueInfoProto, d *dataset.Dataset) (*dataset.Dataset, error) {
	_, dims, _, _ := onnx.TensorType(in)
	fit, err := d.Fit(dataset.Input{Name: in.GetName(), Shape: dims})
	if err != nil {
		return nil, fmt.Errorf("%s: calibration data: %w", m.Name, err)
	}
	return fit, nil
}

// batchOf is the batch size an input takes: its fixed first dimension, or
// def when that is dynamic.
func batchOf(in *onnxpb.ValueInfoProto, def int) int {
	if _, dims, _, ok := onnx.TensorType(in); ok && len(dims) > 0 && dims[0] > 0 {
		return int(dims[0])
	}
	return def
}

// batchTensor holds samples start..start+n of d (fewer at the end).
func batchTensor(d *dataset.Dataset, start, n int) *onnx.Tensor {
	n = min(n, d.Len()-start)
	ss := d.SampleSize()
	dims := []int64{int64(n)}
	for _, s := range d.SampleShape() {
		dims = append(dims, int64(s))
	}
	return onnx.NewTensor(dims, d.X[start*ss:(start+n)*ss])
}

// exposable lists the main-graph tensors a run can return: node outputs,
// except Constant values (weights) and the sequences and optionals that
// Run does not return.
func exposable(g *onnxpb.GraphProto) []string {
	var names []string
	for _, n := range g.GetNode() {
		op := n.GetOpType()
		if op == "Constant" || strings.HasPrefix(op, "Sequence") || op == "SplitToSequence" || strings.HasPrefix(op, "Optional") {
			continue
		}
		for _, o := range n.GetOutput() {
			if o != "" {
				names = append(names, o)
			}
		}
	}
	return names
}

// shapeInputs are the inputs whose values describe shapes, axes or
// bounds: the rules need the values of those that are computed.
var shapeInputs = map[string][]int{
	"Reshape": {1}, "Slice": {1, 2, 3, 4}, "Pad": {1, 3}, "Resize": {3}, "Gather": {1}, "Expand": {1},
	"ReduceMean": {1}, "ReduceSum": {1}, "ReduceMax": {1}, "ReduceMin": {1}, "ReduceProd": {1},
	"ReduceL1": {1}, "ReduceL2": {1}, "ReduceLogSum": {1}, "ReduceLogSumExp": {1}, "ReduceSumSquare": {1},
	"Squeeze": {1}, "Unsqueeze": {1},
}

// probeShapes runs m once and returns the shape of every exposable tensor
// and the values of the computed tensors read as shapes, axes or bounds.
// The run returns Shape(t) rather than t itself (and the values
// flattened): small, and never a scalar, which the ONNX Runtime binding
// cannot return undeclared.
func probeShapes(m *onnx.Model, inputs map[string]*onnx.Tensor, threads int) (map[string][]int64, map[string]*onnx.Tensor, error) {
	p := m.Clone()
	g := p.Proto.GetGraph()
	names := exposable(g)
	produced := map[string]bool{}
	for _, name := range names {
		produced[name] = true
	}
	shapeOf := map[string]string{}
	valueOf := map[string]string{}
	for _, name := range names {
		out := p.UniqueName(name + "_probe_shape")
		g.Node = append(g.Node, onnx.NewNode("Shape", out, []string{name}, []string{out}))
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(out)})
		shapeOf[name] = out
	}
	if p.Opset("") >= 5 {
		flat := p.UniqueName("probe_flat")
		tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []int64{-1}), flat)
		if err != nil {
			return nil, nil, err
		}
		g.Node = append(g.Node, onnx.NewNode("Constant", flat, nil, []string{flat}, onnx.AttrTensor("value", tp)))
		for _, n := range m.Proto.GetGraph().GetNode() {
			for _, i := range shapeInputs[n.GetOpType()] {
				name := input(n, i)
				if !produced[name] || valueOf[name] != "" {
					continue
				}
				out := p.UniqueName(name + "_probe_value")
				g.Node = append(g.Node, onnx.NewNode("Reshape", out, []string{name, flat}, []string{out}))
				g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(out)})
				valueOf[name] = out
			}
		}
	}
	outs, err := runEach(p, []map[string]*onnx.Tensor{inputs}, threads)
	if err != nil {
		return nil, nil, err
	}
	out := outs[0]
	shapes := map[string][]int64{}
	for name, t := range inputs {
		shapes[name] = t.Dims
	}
	for name, s := range shapeOf {
		if dims, ok := out[s].Data.([]int64); ok {
			shapes[name] = dims
		}
	}
	values := map[string]*onnx.Tensor{}
	for name, v := range valueOf {
		t := out[v]
		if dims, ok := shapes[name]; ok && t != nil && onnx.IsInteger(t.DType) && t.Len() <= 64 {
			values[name] = &onnx.Tensor{DType: t.DType, Dims: dims, Data: t.Data}
		}
	}
	return shapes, values, nil
}

// runExposed runs m once with the named tensors as extra outputs and
// returns every output by name.
func runExposed(m *onnx.Model, names []string, inputs map[string]*onnx.Tensor, threads int) (map[string]*onnx.Tensor, error) {
	probe := m
	if len(names) > 0 {
		var err error
		if probe, err = m.ExposeOutputs(names); err != nil {
			return nil, err
		}
	}
	outs, err := runEach(probe, []map[string]*onnx.Tensor{inputs}, threads)
	if err != nil {
		return nil, err
	}
	return outs[0], nil
}

// runEach loads m into ONNX Runtime once and runs it on each set of
// inputs.
func runEach(m *onnx.Model, inputs []map[string]*onnx.Tensor, threads int) ([]map[string]*onnx.Tensor, error) {
	b, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	sess, err := ort.NewSession(m.Name, b, ort.Options{IntraOpThreads: threads})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	outs := make([]map[string]*onnx.Tensor, len(inputs))
	for i, in := range inputs {
		if outs[i], err = sess.Run(in); err != nil {
			return nil, fmt.Errorf("%s: %w", m.Name, err)
		}
	}
	return outs, nil
}
