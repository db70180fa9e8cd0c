package quantize

import "math"

// roundMagic is 1.5·2^23: a float32 f of magnitude below 2^22 plus it
// has exponent 23, an ulp of 1, so its low mantissa bits are f rounded
// half to even, as a two's complement offset from roundMagic's.
const roundMagic = 12582912

// roundInt is f rounded half to even, for |f| < 2^22, without a call.
func roundInt(f float32) int32 {
	return int32(math.Float32bits(f+roundMagic) - math.Float32bits(roundMagic))
}

// nearHalf bounds how far from an integer a product x·(1/s) may be for
// its rounding to be the quotient x/s's. The product is within 2 ulps
// of x/s and the float32 quotient within half an ulp, so below 2^9 (a
// block's codes: its values lie in the range its scale spans, at most
// 255 steps, or 15/0.86 for a clipped 4-bit one) they are less than
// 2^-13 apart, and a product 2^-10 or more from a midpoint rounds as the
// quotient does. From 2^9 on, both saturate the same way.
const nearHalf = 0.5 - 0x1p-10

// roundCodes sets codes[k] to quantizeValue(v[k], p.Scale, p.ZeroPoint,
// qmin, qmax) + shift for the values of a block quantized with p (finite,
// within the range p was computed from): the same float32 quotient
// rounded half to even, saturated in integers. It multiplies by the
// inverse scale, where a division costs several times as much, and
// divides only the rare values whose product lies near a midpoint
// (nearHalf), where the two may round apart.
func roundCodes(codes []byte, v []float32, p Params, qmin, qmax, shift int32) {
	inv := 1 / p.Scale
	lo, hi := qmin-p.ZeroPoint, qmax-p.ZeroPoint
	codes = codes[:len(v)]
	for k, x := range v {
		y := x * inv
		t := y + roundMagic
		q := int32(math.Float32bits(t) - math.Float32bits(roundMagic))
		if d := y - (t - roundMagic); d > nearHalf || d < -nearHalf {
			q = roundInt(x / p.Scale)
		}
		codes[k] = byte(min(max(q, lo), hi) + p.ZeroPoint + shift)
	}
}
