package onnx

import (
	"fmt"
	"math"

	"github.com/x448/float16"
)

// BF16 is a bfloat16 value as its bit pattern (the top half of a float32).
type BF16 uint16

// Tensor is a dense tensor in memory. Data is a Go slice whose element type
// follows DType:
//
//	FLOAT []float32     DOUBLE []float64    FLOAT16 []float16.Float16
//	BFLOAT16 []BF16     INT8 []int8         UINT8 []uint8
//	INT16 []int16       UINT16 []uint16     INT32 []int32
//	UINT32 []uint32     INT64 []int64       UINT64 []uint64
//	BOOL []bool         STRING []string     COMPLEX64 []complex64
//	COMPLEX128 []complex128
//	INT4 []int8 and UINT4 []uint8, one value per element (-8..7, 0..15)
//	FLOAT8* and FLOAT4E2M1 []uint8 bit patterns, one per element
//
// A scalar has no dims and one element.
type Tensor struct {
	DType DataType
	Dims  []int64
	Data  any
}

// Element is a Go type that maps to exactly one ONNX element type.
type Element interface {
	float32 | float64 | float16.Float16 | BF16 | int8 | uint8 | int16 | uint16 |
		int32 | uint32 | int64 | uint64 | bool | string | complex64 | complex128
}

// NewTensor makes a tensor of the ONNX type that matches T. For INT4, UINT4
// and the 8/4-bit float types, build the Tensor literal with the DType.
func NewTensor[T Element](dims []int64, data []T) *Tensor {
	return &Tensor{DType: dtypeOf(data), Dims: dims, Data: data}
}

func dtypeOf(data any) DataType {
	switch data.(type) {
	case []float32:
		return Float
	case []float64:
		return Double
	case []float16.Float16:
		return Float16
	case []BF16:
		return BFloat16
	case []int8:
		return Int8
	case []uint8:
		return Uint8
	case []int16:
		return Int16
	case []uint16:
		return Uint16
	case []int32:
		return Int32
	case []uint32:
		return Uint32
	case []int64:
		return Int64
	case []uint64:
		return Uint64
	case []bool:
		return Bool
	case []string:
		return String
	case []complex64:
		return Complex64
	case []complex128:
		return Complex128
	}
	return Undefined
}

// NumElements is the product of dims (1 for a scalar). Dims read from a
// model are valid once Load has accepted it; to size anything from dims
// that were not checked, use CountElements.
func NumElements(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// Len is the number of elements dims describe.
func (t *Tensor) Len() int { return NumElements(t.Dims) }

// MakeSlice returns a zeroed Go slice of n elements in the representation
// Tensor uses for t.
func MakeSlice(t DataType, n int) (any, error) {
	if n < 0 {
		return nil, fmt.Errorf("cannot make a slice of %d elements", n)
	}
	switch t {
	case Float:
		return make([]float32, n), nil
	case Double:
		return make([]float64, n), nil
	case Float16:
		return make([]float16.Float16, n), nil
	case BFloat16:
		return make([]BF16, n), nil
	case Int8, Int4:
		return make([]int8, n), nil
	case Uint8, Uint4, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float4E2M1, Float8E8M0:
		return make([]uint8, n), nil
	case Int16:
		return make([]int16, n), nil
	case Uint16:
		return make([]uint16, n), nil
	case Int32:
		return make([]int32, n), nil
	case Uint32:
		return make([]uint32, n), nil
	case Int64:
		return make([]int64, n), nil
	case Uint64:
		return make([]uint64, n), nil
	case Bool:
		return make([]bool, n), nil
	case String:
		return make([]string, n), nil
	case Complex64:
		return make([]complex64, n), nil
	case Complex128:
		return make([]complex128, n), nil
	}
	return nil, fmt.Errorf("unsupported tensor data type %v", t)
}

// Zeros makes a tensor of zeros. Nothing backs its dims, so they are
// checked (CountElements) and the tensor may take at most MaxDenseBytes.
func Zeros(t DataType, dims []int64) (*Tensor, error) {
	n, err := CountElements(dims)
	if err == nil {
		err = checkDense(t, n)
	}
	if err != nil {
		return nil, fmt.Errorf("zeros of %v, dims %v: %w", t, dims, err)
	}
	data, err := MakeSlice(t, n)
	if err != nil {
		return nil, err
	}
	return &Tensor{DType: t, Dims: dims, Data: data}, nil
}

// sliceLen is the length of Data, or -1 when Data is not a tensor slice.
func sliceLen(data any) int {
	switch d := data.(type) {
	case []float32:
		return len(d)
	case []float64:
		return len(d)
	case []float16.Float16:
		return len(d)
	case []BF16:
		return len(d)
	case []int8:
		return len(d)
	case []uint8:
		return len(d)
	case []int16:
		return len(d)
	case []uint16:
		return len(d)
	case []int32:
		return len(d)
	case []uint32:
		return len(d)
	case []int64:
		return len(d)
	case []uint64:
		return len(d)
	case []bool:
		return len(d)
	case []string:
		return len(d)
	case []complex64:
		return len(d)
	case []complex128:
		return len(d)
	}
	return -1
}

// Validate checks that Data has the Go type DType calls for and as many
// elements as Dims describe.
func (t *Tensor) Validate() error {
	for i, d := range t.Dims {
		if d < 0 {
			return fmt.Errorf("tensor dims %v: dim %d is negative", t.Dims, i)
		}
	}
	n, err := CountElements(t.Dims)
	if err != nil {
		return fmt.Errorf("tensor dims %v: %w", t.Dims, err)
	}
	want, err := MakeSlice(t.DType, 0)
	if err != nil {
		return err
	}
	if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", t.Data) {
		return fmt.Errorf("tensor of type %v holds %T, expected %T", t.DType, t.Data, want)
	}
	if have := sliceLen(t.Data); have != n {
		return fmt.Errorf("tensor of dims %v needs %d elements, has %d", t.Dims, n, have)
	}
	return nil
}

// Float32s returns the values as float32, converting from any real numeric
// type (FLOAT16 and BFLOAT16 exactly, DOUBLE and 64-bit integers rounded).
// The result is a copy except for FLOAT, where it is Data itself.
func (t *Tensor) Float32s() ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return d, nil
	case []float64:
		return convert(d, func(v float64) float32 { return float32(v) }), nil
	case []float16.Float16:
		return convert(d, float16.Float16.Float32), nil
	case []BF16:
		return convert(d, BF16.Float32), nil
	case []int8:
		return convert(d, func(v int8) float32 { return float32(v) }), nil
	case []uint8:
		if t.DType != Uint8 && t.DType != Uint4 {
			return nil, fmt.Errorf("reading %v tensors as float32 is not supported", t.DType)
		}
		return convert(d, func(v uint8) float32 { return float32(v) }), nil
	case []int16:
		return convert(d, func(v int16) float32 { return float32(v) }), nil
	case []uint16:
		return convert(d, func(v uint16) float32 { return float32(v) }), nil
	case []int32:
		return convert(d, func(v int32) float32 { return float32(v) }), nil
	case []uint32:
		return convert(d, func(v uint32) float32 { return float32(v) }), nil
	case []int64:
		return convert(d, func(v int64) float32 { return float32(v) }), nil
	case []uint64:
		return convert(d, func(v uint64) float32 { return float32(v) }), nil
	case []bool:
		return convert(d, func(v bool) float32 {
			if v {
				return 1
			}
			return 0
		}), nil
	}
	return nil, fmt.Errorf("reading %v tensors as float32 is not supported", t.DType)
}

// FromFloat32s makes a tensor of type t from float32 values: float types
// are converted (rounded to nearest even), integer types rounded to nearest
// and saturated to the type's range.
func FromFloat32s(t DataType, dims []int64, vals []float32) (*Tensor, error) {
	if n, err := CountElements(dims); err != nil || n != len(vals) {
		if err != nil {
			return nil, fmt.Errorf("dims %v: %w", dims, err)
		}
		return nil, fmt.Errorf("dims %v need %d values, got %d", dims, n, len(vals))
	}
	var data any
	switch t {
	case Float:
		data = append([]float32(nil), vals...)
	case Double:
		data = convert(vals, func(v float32) float64 { return float64(v) })
	case Float16:
		data = convert(vals, float16.Fromfloat32)
	case BFloat16:
		data = convert(vals, BF16FromFloat32)
	case Int8:
		data = convert(vals, func(v float32) int8 { return int8(saturate(v, -128, 127)) })
	case Uint8:
		data = convert(vals, func(v float32) uint8 { return uint8(saturate(v, 0, 255)) })
	case Int4:
		data = convert(vals, func(v float32) int8 { return int8(saturate(v, -8, 7)) })
	case Uint4:
		data = convert(vals, func(v float32) uint8 { return uint8(saturate(v, 0, 15)) })
	case Int16:
		data = convert(vals, func(v float32) int16 { return int16(saturate(v, math.MinInt16, math.MaxInt16)) })
	case Uint16:
		data = convert(vals, func(v float32) uint16 { return uint16(saturate(v, 0, math.MaxUint16)) })
	case Int32:
		data = convert(vals, func(v float32) int32 { return int32(saturate(v, math.MinInt32, math.MaxInt32)) })
	case Int64:
		data = convert(vals, func(v float32) int64 { return int64(math.RoundToEven(float64(v))) })
	default:
		return nil, fmt.Errorf("writing float32 values as %v is not supported", t)
	}
	return &Tensor{DType: t, Dims: dims, Data: data}, nil
}

func saturate(v float32, lo, hi float64) float64 {
	r := math.RoundToEven(float64(v))
	return math.Max(lo, math.Min(hi, r))
}

func convert[S, D any](src []S, f func(S) D) []D {
	out := make([]D, len(src))
	for i, v := range src {
		out[i] = f(v)
	}
	return out
}

// Clone returns a deep copy.
func (t *Tensor) Clone() *Tensor {
	c := &Tensor{DType: t.DType, Dims: append([]int64(nil), t.Dims...)}
	c.Data = cloneSlice(t.Data)
	return c
}

func cloneSlice(data any) any {
	switch d := data.(type) {
	case []float32:
		return append([]float32(nil), d...)
	case []float64:
		return append([]float64(nil), d...)
	case []float16.Float16:
		return append([]float16.Float16(nil), d...)
	case []BF16:
		return append([]BF16(nil), d...)
	case []int8:
		return append([]int8(nil), d...)
	case []uint8:
		return append([]uint8(nil), d...)
	case []int16:
		return append([]int16(nil), d...)
	case []uint16:
		return append([]uint16(nil), d...)
	case []int32:
		return append([]int32(nil), d...)
	case []uint32:
		return append([]uint32(nil), d...)
	case []int64:
		return append([]int64(nil), d...)
	case []uint64:
		return append([]uint64(nil), d...)
	case []bool:
		return append([]bool(nil), d...)
	case []string:
		return append([]string(nil), d...)
	case []complex64:
		return append([]complex64(nil), d...)
	case []complex128:
		return append([]complex128(nil), d...)
	}
	return data
}
