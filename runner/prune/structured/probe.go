package structured

import (
	"fmt"
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
