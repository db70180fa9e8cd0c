package ort

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"

	ortgo "github.com/yalue/onnxruntime_go"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// IOInfo describes one model input or output as the graph declares it.
type IOInfo struct {
	Name string
	// DType is the tensor element type; Undefined for values that are not
	// tensors (sequences, maps, optionals), which Run does not support.
	DType onnx.DataType
	// Shape has -1 for dimensions that are dynamic or unknown; nil when the
	// graph declares no shape at all.
	Shape []int64
}

// Session is a model loaded into ONNX Runtime. Run may be called from
// several goroutines at once.
type Session struct {
	name    string
	sess    *ortgo.DynamicAdvancedSession
	Inputs  []IOInfo // the graph inputs a caller must feed, in graph order
	Outputs []IOInfo // the graph outputs, in graph order
	// casts lists outputs widened by widenOutputs.
	casts map[string]bool
}

// NewSession loads a serialized model. name identifies the model in errors
// (a file name or URI).
func NewSession(name string, model []byte, opts Options) (*Session, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	ins, outs, err := declaredIO(model)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	model, casts, err := widenOutputs(model, outs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	so, err := opts.sessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer so.Destroy()
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, ortNames(nil, ins, nil), ortNames(nil, outs, casts), so)
	if err != nil {
		return nil, fmt.Errorf("%s: ONNX Runtime cannot load the model: %w", name, err)
	}
	return &Session{name: name, sess: sess, Inputs: ins, Outputs: outs, casts: casts}, nil
}

// Close releases the session, and the memory it freed to the system.
func (s *Session) Close() error {
	if s.sess == nil {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	trimCHeap()
	return err
}

// Run feeds every input by name and returns every output by name. Inputs
// may have any size along dynamic dimensions.
func (s *Session) Run(inputs map[string]*onnx.Tensor) (map[string]*onnx.Tensor, error) {
	if len(s.Inputs) == 0 {
		return nil, fmt.Errorf("%s: the model has no inputs; running input-less models is not supported", s.name)
	}
	in, err := s.inputValues(inputs)
	defer destroyAll(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	outs, err := s.run(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	return outs, nil
}

// run executes once.
func (s *Session) run(in []ortgo.Value) (map[string]*onnx.Tensor, error) {
	out := make([]ortgo.Value, len(s.Outputs))
	defer destroyAll(out)
	for i, o := range s.Outputs {
		// onnxruntime_go cannot copy an ONNX Runtime-allocated scalar:
		// give it a buffer when the graph declares the output a scalar.
		if o.Shape == nil || len(o.Shape) != 0 {
			continue
		}
		v, err := emptyValue(s.ortType(o), nil)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		out[i] = v
	}
	if err := s.sess.Run(in, out); err != nil {
		return nil, fmt.Errorf("ONNX Runtime run failed: %w", err)
	}
	result := make(map[string]*onnx.Tensor, len(out))
	for i, o := range s.Outputs {
		t, err := fromValue(out[i])
		if err == nil && s.casts[o.Name] {
			t, err = castBack(t, o.DType)
		}
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", o.Name, err)
		}
		result[o.Name] = t
	}
	return result, nil
}

// ortType is the element type ONNX Runtime produces for an output: FLOAT
// or INT8/UINT8 for outputs widened by widenOutputs.
func (s *Session) ortType(o IOInfo) onnx.DataType {
	if s.casts[o.Name] {
		return widened(o.DType)
	}
	return o.DType
}

// destroyAll releases values; after a failed run onnxruntime_go may leave
// typed nil pointers behind, which must not be destroyed.
func destroyAll(vs []ortgo.Value) {
	for i, v := range vs {
		if v != nil && !reflect.ValueOf(v).IsNil() {
			v.Destroy()
		}
		vs[i] = nil
	}
}

func (s *Session) inputValues(inputs map[string]*onnx.Tensor) ([]ortgo.Value, error) {
	want := map[string]bool{}
	for _, in := range s.Inputs {
		want[in.Name] = true
	}
	var extra []string
	for name := range inputs {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("inputs %q are not inputs of the model (it takes %q)", extra, names(s.Inputs))
	}
	vals := make([]ortgo.Value, len(s.Inputs))
	for i, info := range s.Inputs {
		t, ok := inputs[info.Name]
		if !ok || t == nil {
			return vals, fmt.Errorf("input %q is missing (the model takes %q)", info.Name, names(s.Inputs))
		}
		if info.DType != onnx.Undefined && t.DType != info.DType {
			return vals, fmt.Errorf("input %q is %v, the model expects %v", info.Name, t.DType, info.DType)
		}
		v, err := toValue(t)
		if err != nil {
			return vals, fmt.Errorf("input %q: %w", info.Name, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// declaredIO reads the graph's inputs (minus initializers, which IR < 4
// models also list as inputs) and outputs from the serialized model.
func declaredIO(model []byte) (ins, outs []IOInfo, err error) {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		return nil, nil, fmt.Errorf("not an ONNX model: %w", err)
	}
	g := m.GetGraph()
	if g == nil {
		return nil, nil, fmt.Errorf("the model has no graph")
	}
	inits := map[string]bool{}
	for _, t := range g.GetInitializer() {
		inits[t.GetName()] = true
	}
	for _, t := range g.GetSparseInitializer() {
		inits[t.GetValues().GetName()] = true
	}
	for _, v := range g.GetInput() {
		if !inits[v.GetName()] {
			ins = append(ins, ioInfo(v))
		}
	}
	for _, v := range g.GetOutput() {
		outs = append(outs, ioInfo(v))
	}
	return ins, outs, nil
}

func ioInfo(v *onnxpb.ValueInfoProto) IOInfo {
	info := IOInfo{Name: v.GetName()}
	tt := v.GetType().GetTensorType()
	if tt == nil {
		return info
	}
	info.DType = onnx.DataType(tt.GetElemType())
	if tt.Shape != nil {
		info.Shape = make([]int64, len(tt.GetShape().GetDim()))
		for i, d := range tt.GetShape().GetDim() {
			info.Shape[i] = -1
			if d.Value != nil {
				if dv, ok := d.Value.(*onnxpb.TensorShapeProto_Dimension_DimValue); ok {
					info.Shape[i] = dv.DimValue
				}
			}
		}
	}
	return info
}

func names(infos []IOInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

func isStatic(shape []int64) bool {
	if shape == nil {
		return false
	}
	for _, d := range shape {
		if d < 0 {
			return false
		}
	}
	return true
}

// OptimizedModel returns the model as ONNX Runtime rewrites it at the given
// optimization level (fusions, constant folding, e.g. QDQ pairs fused into
// QLinearConv), so callers can check which kernels ONNX Runtime will use.
func OptimizedModel(name string, model []byte, opts Options) ([]byte, error) {
	if err := Init(); err != nil {
		return nil, err
	}
	ins, outs, err := declaredIO(model)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	dir, err := os.MkdirTemp("", "kompress-ort-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "optimized.onnx")
	so, err := opts.sessionOptions()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer so.Destroy()
	if err := so.SetOptimizedModelFilePath(path); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sess, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, names(ins), names(outs), so)
	if err != nil {
		return nil, fmt.Errorf("%s: ONNX Runtime cannot load the model: %w", name, err)
	}
	if err := sess.Destroy(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: ONNX Runtime wrote no optimized model: %w", name, err)
	}
	return b, nil
}
