package onnx

import (
	"math"

	"github.com/x448/float16"
)

// Float32 widens a bfloat16 exactly.
func (b BF16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// BF16FromFloat32 rounds to the nearest bfloat16 (ties to even), keeping NaN
// a NaN.
func BF16FromFloat32(f float32) BF16 {
	u := math.Float32bits(f)
	if f != f {
		return BF16(u>>16 | 0x40) // keep it a quiet NaN after truncation
	}
	u += 0x7fff + (u>>16)&1
	return BF16(u >> 16)
}

// Float16s converts float32 values to IEEE half precision (round to
// nearest even; out-of-range values become ±Inf).
func Float16s(vals []float32) []float16.Float16 { return convert(vals, float16.Fromfloat32) }

// Float32sFromFloat16 widens half-precision values exactly.
func Float32sFromFloat16(vals []float16.Float16) []float32 {
	return convert(vals, float16.Float16.Float32)
}
