package prune

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/quantize"
)

// Calibration supplies the model inputs hessian pruning calibrates on: the
// same iterator static quantization reads (quantize.FromDataset makes one
// from a dataset).
type Calibration = quantize.Calibration

// modelInput is a graph input the calibration data must feed.
type modelInput struct {
	name  string
	dtype onnx.DataType
	dims  []int64 // -1 where dynamic; nil when undeclared
}

// calibSet is the calibration data read once and kept for every pass.
type calibSet struct {
	batches []map[string]*onnx.Tensor
	samples int
}

// readCalibration reads up to limit samples, checks every batch against
// the model's inputs and, when the model fixes its batch dimension, cuts
// the batches to that size (samples that do not fill a last batch are
// left out).
func readCalibration(m *onnx.Model, calib Calibration, limit int) (*calibSet, error) {
	if calib == nil {
		return nil, fmt.Errorf("%w: method hessian needs calibration data (the job's dataset)", ErrCalibration)
	}
	inputs := graphInputs(m)
	fixed := 0
	for _, in := range inputs {
		if len(in.dims) > 0 && in.dims[0] > 0 {
			fixed = int(in.dims[0])
		}
	}
	set := &calibSet{}
	var pending []map[string]*onnx.Tensor // fixed batch: samples waiting to fill one
	for n := 1; set.samples < limit; n++ {
		batch, err := calib.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: batch %d: %v", ErrCalibration, n, err)
		}
		size, err := checkBatch(inputs, batch)
		if err != nil {
			return nil, fmt.Errorf("%w: batch %d: %v", ErrCalibration, n, err)
		}
		size = min(size, limit-set.samples-len(pending))
		if fixed == 0 {
			set.batches = append(set.batches, slice(batch, 0, size))
			set.samples += size
			continue
		}
		for i := 0; i < size; i++ {
			pending = append(pending, slice(batch, i, i+1))
			if len(pending) == fixed {
				set.batches = append(set.batches, concat(pending))
				set.samples += fixed
				pending = pending[:0]
			}
		}
		if set.samples+len(pending) >= limit {
			break
		}
	}
	if set.samples == 0 {
		if fixed > 1 {
			return nil, fmt.Errorf("%w: fewer samples than the model's fixed batch of %d", ErrCalibration, fixed)
		}
		return nil, fmt.Errorf("%w: no samples", ErrCalibration)
	}
	return set, nil
}

// graphInputs lists the main graph's inputs that are not initializers.
func graphInputs(m *onnx.Model) []modelInput {
	g := m.Proto.GetGraph()
	idx := onnx.IndexGraph(g, "")
	var ins []modelInput
	for _, vi := range g.GetInput() {
		if idx.Initializer[vi.GetName()] != nil {
			continue
		}
		in := modelInput{name: vi.GetName()}
		if dt, dims, _, ok := onnx.TensorType(vi); ok {
			in.dtype, in.dims = dt, dims
		}
		ins = append(ins, in)
	}
	return ins
}

// checkBatch compares a batch with the model's inputs and returns its
// number of samples.
func checkBatch(inputs []modelInput, batch map[string]*onnx.Tensor) (int, error) {
	want := map[string]bool{}
	size := -1
	for _, in := range inputs {
		want[in.name] = true
		t, ok := batch[in.name]
		if !ok {
			return 0, fmt.Errorf("no tensor for model input %q", in.name)
		}
		if in.dtype != onnx.Undefined && t.DType != in.dtype {
			return 0, fmt.Errorf("input %q is %v, the model takes %v", in.name, t.DType, in.dtype)
		}
		if in.dims != nil && !fits(t.Dims, in.dims) {
			return 0, fmt.Errorf("input %q has shape %v, the model takes %s (batch first)", in.name, t.Dims, shapeString(in.dims))
		}
		if len(t.Dims) == 0 {
			continue // a scalar (a flag) is fed as it is to every run
		}
		if size >= 0 && int(t.Dims[0]) != size {
			return 0, fmt.Errorf("input %q has %d samples, other inputs %d", in.name, t.Dims[0], size)
		}
		size = int(t.Dims[0])
	}
	var extra []string
	for name := range batch {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return 0, fmt.Errorf("tensors %q are not inputs of the model", extra)
	}
	if size < 0 {
		size = 1 // only scalars: one sample
	}
	return size, nil
}

// fits compares dims with a declared shape, the batch dimension excluded.
func fits(dims, declared []int64) bool {
	if len(dims) != len(declared) {
		return false
	}
	for i := 1; i < len(dims); i++ {
		if declared[i] > 0 && dims[i] != declared[i] {
			return false
		}
	}
	return true
}

func shapeString(dims []int64) string {
	parts := make([]string, len(dims))
	for i, d := range dims {
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

// slice returns samples [from, to) of every tensor of a batch, sharing
// memory; scalars are kept as they are.
func slice(batch map[string]*onnx.Tensor, from, to int) map[string]*onnx.Tensor {
	out := make(map[string]*onnx.Tensor, len(batch))
	for name, t := range batch {
		if len(t.Dims) == 0 || int(t.Dims[0]) == to-from {
			out[name] = t
			continue
		}
		inner := t.Len() / int(t.Dims[0])
		dims := append([]int64{int64(to - from)}, t.Dims[1:]...)
		data := reflect.ValueOf(t.Data).Slice(from*inner, to*inner).Interface()
		out[name] = &onnx.Tensor{DType: t.DType, Dims: dims, Data: data}
	}
	return out
}

// concat joins batches along dimension 0 (scalars are taken from the
// first).
func concat(parts []map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	out := map[string]*onnx.Tensor{}
	for name, first := range parts[0] {
		if len(first.Dims) == 0 {
			out[name] = first
			continue
		}
		data := reflect.MakeSlice(reflect.TypeOf(first.Data), 0, first.Len()*len(parts))
		n := int64(0)
		for _, p := range parts {
			data = reflect.AppendSlice(data, reflect.ValueOf(p[name].Data))
			n += p[name].Dims[0]
		}
		dims := append([]int64{n}, first.Dims[1:]...)
		out[name] = &onnx.Tensor{DType: first.DType, Dims: dims, Data: data.Interface()}
	}
	return out
}
