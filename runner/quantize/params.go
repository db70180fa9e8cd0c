package quantize

import "math"

// Params are the scale and zero point of the relation x = (q - ZeroPoint) * Scale.
type Params struct {
	Scale     float32
	ZeroPoint int32
}

// ComputeParams returns the parameters that map [rmin, rmax] onto t.
//
// As ONNX Runtime's compute_scale_zp: the range is first widened to include
// 0 (so 0 is exactly representable and pruned weights stay exactly zero);
// symmetric makes it [-absmax, absmax] with the zero point in the middle of
// the type (0 for signed types, 128 for uint8, 8 for uint4); the scale is
// computed in float64 and stored as float32; a degenerate range (all zeros)
// gets scale 1 and zero point 0.
func ComputeParams(rmin, rmax float32, t QType, symmetric bool) Params {
	rmin = min(rmin, 0)
	rmax = max(rmax, 0)
	qmin, qmax := t.Range()
	if symmetric {
		absmax := max(-rmin, rmax)
		rmin, rmax = -absmax, absmax
		qmin, qmax = t.symmetricRange()
	}
	scale := (float64(rmax) - float64(rmin)) / float64(qmax-qmin)
	if scale < smallestNormalFloat32 {
		return Params{Scale: 1, ZeroPoint: 0}
	}
	if symmetric {
		return Params{Scale: float32(scale), ZeroPoint: int32(math.RoundToEven(float64(qmin+qmax) / 2))}
	}
	zp := math.RoundToEven(float64(qmin) - float64(rmin)/scale)
	// rmin <= 0 <= rmax keeps zp in [qmin, qmax] up to rounding; clamp the
	// rounding away.
	zp = min(max(zp, float64(qmin)), float64(qmax))
	return Params{Scale: float32(scale), ZeroPoint: int32(zp)}
}

// smallestNormalFloat32 is numpy.finfo(float32).tiny: ONNX Runtime treats
// a smaller scale as a degenerate range.
const smallestNormalFloat32 = 0x1p-126

// Quantize maps x to t as QuantizeLinear does: x / Scale in float32, rounded
// half to even, plus the zero point, saturated to t's full range.
func (p Params) Quantize(x float32, t QType) int32 {
	qmin, qmax := t.Range()
	return quantizeValue(x, p.Scale, p.ZeroPoint, qmin, qmax)
}

// Dequantize maps q back: (q - ZeroPoint) * Scale.
func (p Params) Dequantize(q int32) float32 {
	return float32(q-p.ZeroPoint) * p.Scale
}

func quantizeValue(x, scale float32, zp, qmin, qmax int32) int32 {
	r := math.RoundToEven(float64(x / scale))
	// NaN saturates to the zero point's neighbourhood in no defined way in
	// ONNX; map it to the zero point so a NaN weight dequantizes to 0.
	if math.IsNaN(r) {
		return zp
	}
	v := r + float64(zp)
	if v < float64(qmin) {
		return qmin
	}
	if v > float64(qmax) {
		return qmax
	}
	return int32(v)
}
