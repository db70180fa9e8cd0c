package onnx

import (
	"fmt"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// DataType is an ONNX tensor element type (TensorProto.DataType). Its
// values are the ones ONNX and ONNX Runtime use on the wire.
type DataType = onnxpb.TensorProto_DataType

// Short names for the element types.
const (
	Undefined      = onnxpb.TensorProto_UNDEFINED
	Float          = onnxpb.TensorProto_FLOAT
	Uint8          = onnxpb.TensorProto_UINT8
	Int8           = onnxpb.TensorProto_INT8
	Uint16         = onnxpb.TensorProto_UINT16
	Int16          = onnxpb.TensorProto_INT16
	Int32          = onnxpb.TensorProto_INT32
	Int64          = onnxpb.TensorProto_INT64
	String         = onnxpb.TensorProto_STRING
	Bool           = onnxpb.TensorProto_BOOL
	Float16        = onnxpb.TensorProto_FLOAT16
	Double         = onnxpb.TensorProto_DOUBLE
	Uint32         = onnxpb.TensorProto_UINT32
	Uint64         = onnxpb.TensorProto_UINT64
	Complex64      = onnxpb.TensorProto_COMPLEX64
	Complex128     = onnxpb.TensorProto_COMPLEX128
	BFloat16       = onnxpb.TensorProto_BFLOAT16
	Float8E4M3FN   = onnxpb.TensorProto_FLOAT8E4M3FN
	Float8E4M3FNUZ = onnxpb.TensorProto_FLOAT8E4M3FNUZ
	Float8E5M2     = onnxpb.TensorProto_FLOAT8E5M2
	Float8E5M2FNUZ = onnxpb.TensorProto_FLOAT8E5M2FNUZ
	Uint4          = onnxpb.TensorProto_UINT4
	Int4           = onnxpb.TensorProto_INT4
	Float4E2M1     = onnxpb.TensorProto_FLOAT4E2M1
	Float8E8M0     = onnxpb.TensorProto_FLOAT8E8M0
)

// ElemBits is the storage width of one element in bits: 4 for the packed
// 4-bit types, 0 for STRING (variable) and unknown types.
func ElemBits(t DataType) int {
	switch t {
	case Uint4, Int4, Float4E2M1:
		return 4
	case Uint8, Int8, Bool, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return 8
	case Uint16, Int16, Float16, BFloat16:
		return 16
	case Float, Int32, Uint32:
		return 32
	case Double, Int64, Uint64, Complex64:
		return 64
	case Complex128:
		return 128
	}
	return 0
}

// ByteSize is the number of bytes n elements of type t take in raw_data
// (4-bit types packed two to a byte). STRING has no fixed size: 0.
func ByteSize(t DataType, n int) int {
	return (n*ElemBits(t) + 7) / 8
}

// IsFloat reports whether t is a floating-point type that weights are
// stored in (FLOAT, FLOAT16, BFLOAT16, DOUBLE, and the 8- and 4-bit floats).
func IsFloat(t DataType) bool {
	switch t {
	case Float, Float16, BFloat16, Double,
		Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float4E2M1, Float8E8M0:
		return true
	}
	return false
}

// IsInteger reports whether t is a signed or unsigned integer type
// (including INT4/UINT4, excluding BOOL).
func IsInteger(t DataType) bool {
	switch t {
	case Uint8, Int8, Uint16, Int16, Int32, Int64, Uint32, Uint64, Uint4, Int4:
		return true
	}
	return false
}

// ParseDataType turns a name such as "FLOAT" or "int8" into a DataType.
func ParseDataType(name string) (DataType, error) {
	for v, n := range onnxpb.TensorProto_DataType_name {
		if n == name || n == upper(name) {
			return DataType(v), nil
		}
	}
	return Undefined, fmt.Errorf("unknown ONNX data type %q (expected a TensorProto.DataType name such as FLOAT, INT8, FLOAT16)", name)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
