package structured

import (
	"fmt"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// probeSeed makes synthesized probe inputs the same on every run.
const probeSeed = 0x7374727563747572

// calibrationData matches the calibration data to m's inputs.
func calibrationData(m *onnx.Model, d *dataset.Dataset) (*feed.Data, error) {
	data, err := feed.FromDataset(feed.Inputs(m), d)
	if err != nil {
		return nil, fmt.Errorf("%s: calibration data: %w", m.Name, err)
	}
	return data, nil
}

// probeInputs makes the inputs of the run that reveals tensor shapes: the
// first calibration batch (the model's fixed batch, else one sample) when
// there is calibration data, else deterministic values (feed.Synthesize:
// as opts.Inputs say, else floats in [0, 1) and integers zero) at
// opts.InputShapes, the shapes opts.Inputs give or the declared
// shape with batch 1 (or the fixed batch) and DefaultDynamicDim for other
// dynamic dimensions.
func probeInputs(m *onnx.Model, opts Options) (map[string]*onnx.Tensor, error) {
	if opts.Calibration != nil {
		d, err := calibrationData(m, opts.Calibration)
		if err != nil {
			return nil, err
		}
		size, fixed, err := feed.BatchSize(1, 0, d)
		if err != nil {
			return nil, fmt.Errorf("%s: calibration data: %w", m.Name, err)
		}
		spans := feed.Plan(d.Len(), size, fixed, feed.Pad)
		if len(spans) == 0 {
			return nil, fmt.Errorf("%s: calibration data %s has no samples", m.Name, d.Name)
		}
		return d.Tensors(spans[0].Samples())
	}
	ins := feed.Inputs(m)
	for name := range opts.InputShapes {
		if _, ok := inputNamed(ins, name); !ok {
			return nil, fmt.Errorf("structured pruning: inputShapes names input %q, which is not an input of %s (its inputs are %q)", name, m.Name, feed.Names(ins))
		}
	}
	field := opts.InputsField
	if field == "" {
		field = "inputs"
	}
	for name := range opts.Inputs {
		if _, ok := inputNamed(ins, name); !ok {
			return nil, fmt.Errorf("structured pruning: %s names input %q, which is not an input of %s (its inputs are %q)", field, name, m.Name, feed.Names(ins))
		}
	}
	specs := map[string]feed.Spec{}
	for name, s := range opts.Inputs {
		specs[name] = s
	}
	batch := 0 // from the first input (in graph order) that gives or fixes it
	for _, in := range ins {
		s, given := opts.InputShapes[in.Name]
		_, specified := opts.Inputs[in.Name]
		switch {
		case !given && in.Dims == nil && !specified:
			return nil, fmt.Errorf("%s: input %q declares no tensor shape; give its shape in %s", m.Name, in.Name, field)
		case !given:
			// An input the specs give whole (a state [2,1,128] whose
			// first dimension the model fixes) does not set the batch.
			whole := len(specs[in.Name].Shape) == len(in.Dims) && specs[in.Name].Shape != nil
			if b := fixedBatch(in); batch == 0 && b > 0 && !whole {
				batch = b
			}
			continue
		case in.Dims != nil && len(s) != len(in.Dims):
			return nil, fmt.Errorf("structured pruning: inputShapes[%q] = %v has rank %d, the input has rank %d", in.Name, s, len(s), len(in.Dims))
		case len(s) == 0:
			sp := specs[in.Name]
			sp.Shape = []int64{}
			specs[in.Name] = sp
			continue
		}
		// Dimensions not given (<= 0) take the declared or default ones.
		s = append([]int64(nil), s...)
		for i, d := range s {
			if d <= 0 && in.Dims != nil && in.Dims[i] > 0 {
				s[i] = in.Dims[i]
			} else if d <= 0 && i > 0 {
				s[i] = DefaultDynamicDim
			}
		}
		sp := specs[in.Name]
		sp.Shape = s[1:]
		specs[in.Name] = sp
		if batch == 0 && s[0] > 0 {
			batch = int(s[0])
		}
	}
	synthField := "inputShapes"
	if len(opts.InputShapes) == 0 {
		synthField = field
	}
	d, err := feed.Synthesize(ins, feed.Synth{Specs: specs, Samples: max(batch, 1), Seed: probeSeed, Stream: probeSeed, Field: synthField})
	if err != nil {
		return nil, fmt.Errorf("structured pruning: %s: %w", m.Name, err)
	}
	return d.Tensors(feed.Span{N: d.Len(), Size: d.Len()}.Samples())
}

func inputNamed(ins []feed.Input, name string) (feed.Input, bool) {
	for _, in := range ins {
		if in.Name == name {
			return in, true
		}
	}
	return feed.Input{}, false
}

// fixedBatch is the batch an input fixes on dimension 0, or 0.
func fixedBatch(in feed.Input) int {
	if len(in.Dims) > 0 && in.Dims[0] > 0 {
		return int(in.Dims[0])
	}
	return 0
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
	sess, err := feed.Open(m, feed.Options{Expose: names, Threads: threads})
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	out, err := sess.Run(inputs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.Name, err)
	}
	return out, nil
}

// runEach loads m into ONNX Runtime once and runs it on each set of
// inputs.
func runEach(m *onnx.Model, inputs []map[string]*onnx.Tensor, threads int) ([]map[string]*onnx.Tensor, error) {
	sess, err := feed.Open(m, feed.Options{Threads: threads})
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
