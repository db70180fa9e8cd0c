package onnx

import (
	"errors"
	"fmt"
	"slices"
)

// How big a tensor may be. Declared dims are never trusted to size an
// allocation:
//
//   - Every dim must be >= 0 and their product at most MaxElements; the
//     product is computed with overflow checks, so no size derived from
//     dims can wrap around.
//   - A tensor that carries data (raw_data, a typed field such as
//     float_data, or an external file's bytes once LoadFile has read them)
//     must hold exactly as many bytes or values as its dims call for, and
//     this is checked before anything is allocated. Its size is therefore
//     bounded by the bytes actually read: at most 2 GiB inline (protobuf's
//     limit), the external file's size otherwise.
//   - A tensor allocated with no data behind it (the dense form of a
//     sparse tensor, Zeros, an input synthesized from a declared shape) may
//     take at most MaxDenseBytes in memory.
const (
	// MaxElements is the most elements any tensor may declare: 2^40,
	// 4 TiB of FLOAT, far past what a runner can hold and far below where
	// byte counts (at most 16 bytes an element) overflow an int64.
	MaxElements = 1 << 40
	// MaxDenseBytes is the most memory a tensor with no data behind it
	// may take: 2 GiB - 1, the most a dense weight stored inline in a
	// model can hold, so expanding a sparse weight never needs more than
	// the same weight stored dense would have.
	MaxDenseBytes = 1<<31 - 1
)

// maxDenseBytes is MaxDenseBytes; fuzz targets lower it so that expanding
// a fuzzed sparse tensor stays cheap.
var maxDenseBytes int64 = MaxDenseBytes

// CountElements is the number of elements dims describe (1 for a scalar),
// checked: an error when a dim is negative or the product passes
// MaxElements. Use it wherever dims that came from a model size something.
func CountElements(dims []int64) (int, error) {
	zero := false
	for i, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("dim %d is %d, expected >= 0", i, d)
		}
		zero = zero || d == 0
	}
	if zero {
		return 0, nil
	}
	n := int64(1)
	for _, d := range dims {
		if d > MaxElements/n {
			return 0, &tooManyError{dims: dims}
		}
		n *= d
	}
	return int(n), nil
}

// tooManyError is CountElements' error for dims past MaxElements.
type tooManyError struct{ dims []int64 }

func (e *tooManyError) Error() string {
	return fmt.Sprintf("dims %v multiply to more than %d elements, the most a tensor may have", e.dims, int64(MaxElements))
}

// typeAndDims is "(TYPE, dims [..])" for messages about a tensor of type t
// and dims, without the dims when err already names them.
func typeAndDims(t DataType, dims []int64, err error) string {
	if tm, ok := errors.AsType[*tooManyError](err); ok && slices.Equal(tm.dims, dims) {
		return fmt.Sprintf("(%v)", t)
	}
	return fmt.Sprintf("(%v, dims %v)", t, dims)
}

// memBytes is the memory n decoded elements of type t take in a Tensor
// (4-bit types take a byte each once unpacked, a string its header); 0
// for types this package cannot decode.
func memBytes(t DataType, n int) int64 {
	switch {
	case t == String:
		return 16 * int64(n)
	case ElemBits(t) == 4:
		return int64(n)
	}
	return int64(ElemBits(t)/8) * int64(n)
}

// checkDense refuses a tensor of n elements of type t that would be
// allocated with no data behind it when it passes maxDenseBytes.
func checkDense(t DataType, n int) error {
	if b := memBytes(t, n); b > maxDenseBytes {
		return fmt.Errorf("its dense form is %d elements of %v (%d bytes), more than the %d bytes a tensor without data may take", n, t, b, maxDenseBytes)
	}
	return nil
}
