package feed

import (
	"fmt"
	"math"
	"slices"

	"github.com/x448/float16"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// tensorOf wraps an array of a dataset file as a tensor, sharing memory.
func tensorOf(a dataset.Array) (*onnx.Tensor, error) {
	dims := make([]int64, len(a.Shape))
	for i, d := range a.Shape {
		dims[i] = int64(d)
	}
	var dt onnx.DataType
	switch a.Data.(type) {
	case []bool:
		dt = onnx.Bool
	case []uint8:
		dt = onnx.Uint8
	case []int8:
		dt = onnx.Int8
	case []uint16:
		dt = onnx.Uint16
	case []int16:
		dt = onnx.Int16
	case []uint32:
		dt = onnx.Uint32
	case []int32:
		dt = onnx.Int32
	case []uint64:
		dt = onnx.Uint64
	case []int64:
		dt = onnx.Int64
	case []float16.Float16:
		dt = onnx.Float16
	case []float32:
		dt = onnx.Float
	case []float64:
		dt = onnx.Double
	default:
		return nil, fmt.Errorf("array %q holds %T, which cannot be fed to a model", a.Name, a.Data)
	}
	t := &onnx.Tensor{DType: dt, Dims: dims, Data: a.Data}
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("array %q: %w", a.Name, err)
	}
	return t, nil
}

// convert returns t as element type to: floats of any width from floats,
// integers and booleans (float16 models take float16); integers and
// booleans only from integers and booleans, and only values the type
// holds. Undefined (a type the graph does not declare) keeps t's.
func convert(t *onnx.Tensor, to onnx.DataType) (*onnx.Tensor, error) {
	if to == onnx.Undefined || to == t.DType {
		return t, nil
	}
	switch {
	case to == onnx.Double:
		if d, ok := int64s(t); ok {
			return onnx.NewTensor(t.Dims, mapSlice(d, func(v int64) float64 { return float64(v) })), nil
		}
		vals, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		return onnx.NewTensor(t.Dims, mapSlice(vals, func(v float32) float64 { return float64(v) })), nil
	case to == onnx.Float:
		vals, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		if _, shared := t.Data.([]float32); shared {
			vals = slices.Clone(vals)
		}
		// One copy a batch: the values as float32, converted from what
		// the dataset holds.
		return &onnx.Tensor{DType: onnx.Float, Dims: t.Dims, Data: vals}, nil
	case onnx.IsFloat(to):
		vals, err := t.Float32s()
		if err != nil {
			return nil, err
		}
		return onnx.FromFloat32s(to, t.Dims, vals)
	case onnx.IsInteger(to) || to == onnx.Bool:
		vals, ok := int64s(t)
		if !ok {
			return nil, fmt.Errorf("%v values are not converted to %v: store them as integers", t.DType, to)
		}
		return fromInt64s(to, t.Dims, vals)
	}
	return nil, fmt.Errorf("%v values cannot be converted to %v", t.DType, to)
}

// convertible reports whether convert can turn from into to (value
// ranges aside).
func convertible(from, to onnx.DataType) bool {
	numeric := func(t onnx.DataType) bool { return onnx.IsFloat(t) || onnx.IsInteger(t) || t == onnx.Bool }
	switch {
	case to == onnx.Undefined || to == from:
		return true
	case onnx.IsFloat(to):
		return numeric(from)
	case onnx.IsInteger(to) || to == onnx.Bool:
		return onnx.IsInteger(from) || from == onnx.Bool
	}
	return false
}

// int64s reads an integer or boolean tensor's values.
func int64s(t *onnx.Tensor) ([]int64, bool) {
	switch d := t.Data.(type) {
	case []bool:
		return mapSlice(d, func(v bool) int64 {
			if v {
				return 1
			}
			return 0
		}), true
	case []uint8:
		if t.DType != onnx.Uint8 {
			return nil, false
		}
		return mapSlice(d, func(v uint8) int64 { return int64(v) }), true
	case []int8:
		if t.DType != onnx.Int8 {
			return nil, false
		}
		return mapSlice(d, func(v int8) int64 { return int64(v) }), true
	case []uint16:
		return mapSlice(d, func(v uint16) int64 { return int64(v) }), true
	case []int16:
		return mapSlice(d, func(v int16) int64 { return int64(v) }), true
	case []uint32:
		return mapSlice(d, func(v uint32) int64 { return int64(v) }), true
	case []int32:
		return mapSlice(d, func(v int32) int64 { return int64(v) }), true
	case []uint64:
		if slicesAny(d, func(v uint64) bool { return v > math.MaxInt64 }) {
			return nil, false
		}
		return mapSlice(d, func(v uint64) int64 { return int64(v) }), true
	case []int64:
		return d, true
	}
	return nil, false
}

// fromInt64s makes an integer or boolean tensor, refusing values the type
// cannot hold.
func fromInt64s(to onnx.DataType, dims []int64, vals []int64) (*onnx.Tensor, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	switch to {
	case onnx.Bool:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) bool { return v != 0 })), nil
	case onnx.Uint8:
		lo, hi = 0, math.MaxUint8
	case onnx.Int8:
		lo, hi = math.MinInt8, math.MaxInt8
	case onnx.Uint16:
		lo, hi = 0, math.MaxUint16
	case onnx.Int16:
		lo, hi = math.MinInt16, math.MaxInt16
	case onnx.Uint32:
		lo, hi = 0, math.MaxUint32
	case onnx.Int32:
		lo, hi = math.MinInt32, math.MaxInt32
	case onnx.Uint64:
		lo = 0
	case onnx.Int64:
	default:
		return nil, fmt.Errorf("integer values cannot be converted to %v", to)
	}
	for _, v := range vals {
		if v < lo || v > hi {
			return nil, fmt.Errorf("value %d does not fit %v", v, to)
		}
	}
	switch to {
	case onnx.Uint8:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) uint8 { return uint8(v) })), nil
	case onnx.Int8:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) int8 { return int8(v) })), nil
	case onnx.Uint16:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) uint16 { return uint16(v) })), nil
	case onnx.Int16:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) int16 { return int16(v) })), nil
	case onnx.Uint32:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) uint32 { return uint32(v) })), nil
	case onnx.Int32:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) int32 { return int32(v) })), nil
	case onnx.Uint64:
		return onnx.NewTensor(dims, mapSlice(vals, func(v int64) uint64 { return uint64(v) })), nil
	}
	return onnx.NewTensor(dims, vals), nil
}

func mapSlice[S, D any](src []S, f func(S) D) []D {
	out := make([]D, len(src))
	for i, v := range src {
		out[i] = f(v)
	}
	return out
}

func slicesAny[T any](s []T, f func(T) bool) bool {
	for _, v := range s {
		if f(v) {
			return true
		}
	}
	return false
}
