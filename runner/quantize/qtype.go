package quantize

import "fmt"

// QType is the integer element type quantized values are stored in.
type QType int

// The quantized element types.
const (
	Int8 QType = iota + 1
	UInt8
	Int4
	UInt4
)

func (t QType) String() string {
	switch t {
	case Int8:
		return "int8"
	case UInt8:
		return "uint8"
	case Int4:
		return "int4"
	case UInt4:
		return "uint4"
	}
	return fmt.Sprintf("QType(%d)", int(t))
}

// Bits is the width of one element.
func (t QType) Bits() int {
	if t == Int4 || t == UInt4 {
		return 4
	}
	return 8
}

// Signed reports whether the type holds negative values.
func (t QType) Signed() bool { return t == Int8 || t == Int4 }

// Range is the full range of the type: what QuantizeLinear saturates to.
func (t QType) Range() (qmin, qmax int32) {
	switch t {
	case Int8:
		return -128, 127
	case UInt8:
		return 0, 255
	case Int4:
		return -8, 7
	case UInt4:
		return 0, 15
	}
	panic("quantize: unknown QType " + t.String())
}

// symmetricRange is the range symmetric parameters are computed over. For
// int8 it drops one code so that the zero point sits exactly in the middle
// ([-127, 127]), as ONNX Runtime's ONNX_INT_TYPE_SYMMETRIC_RANGE does; that
// keeps every channel's zero point identical, which ONNX Runtime's
// per-channel QLinearConv requires. Other types keep their full range, as
// there (uint8 gets zero point round(127.5) = 128; 4-bit types have too
// few codes to spare one).
func (t QType) symmetricRange() (qmin, qmax int32) {
	if t == Int8 {
		return -127, 127
	}
	return t.Range()
}
