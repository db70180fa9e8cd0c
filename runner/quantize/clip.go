package quantize

import "math"

// At 4 bits a block's range is not the best one to round it to: a block
// of 32 heavy-tailed weights has one or two values far from the others,
// and a range that reaches them spends the 16 levels on values that are
// rare. As the MSE observers of GPTQ's reference code, AWQ and llama.cpp
// do, each 4-bit block tries its range shrunk by a few ratios and keeps
// the one whose rounding has the least squared error (values past the
// shrunk range saturate). The ratios are where the choice fell on Laplace
// weights (the heavy-tailed distribution of trained ones) when 26 ratios
// from 1 down to 0.5 were tried: asymmetric blocks in [0.9, 1], symmetric
// ones, which cannot move their zero point, in [0.8, 1]. Trying the
// first ratio, 1, keeps a block's error at most its whole range's.
//
// Shrinking both ends of a range by r shrinks its scale by r and keeps
// its zero point (-min/scale is unchanged), so a candidate is the whole
// range's parameters with the scale times r; the three are measured in
// one pass over the block.
var (
	clipAsymmetric = [3]float32{1, 0.97, 0.94}
	clipSymmetric  = [3]float32{1, 0.93, 0.86}
)

// blockParams returns the parameters of a block v of type t whose range
// is [lo, hi]: ComputeParams of the range, at 4 bits with the scale
// shrunk by the clip ratio that rounds v with the least squared error.
func blockParams(v []float32, lo, hi float32, t QType, symmetric bool) Params {
	p := ComputeParams(lo, hi, t, symmetric)
	if t.Bits() != 4 || (lo == 0 && hi == 0) {
		return p
	}
	ratios := clipAsymmetric
	if symmetric {
		ratios = clipSymmetric
	}
	qmin, qmax := t.Range()
	e := roundingErrors(v, p.Scale, p.ZeroPoint, qmin, qmax, ratios)
	best := 0
	for i := 1; i < len(e); i++ {
		if e[i] < e[best] {
			best = i
		}
	}
	p.Scale *= ratios[best]
	return p
}

// roundMagic is 1.5·2^23: a float32 f of magnitude below 2^22 plus it
// has exponent 23, an ulp of 1, so its low mantissa bits are f rounded
// half to even, as a two's complement offset from roundMagic's.
const roundMagic = 12582912

// roundInt is f rounded half to even, for |f| < 2^22, without a call.
func roundInt(f float32) int32 {
	return int32(math.Float32bits(f+roundMagic) - math.Float32bits(roundMagic))
}

// roundingErrors are the squared errors of rounding v to codes in [qmin,
// qmax] with zero point zp and each scale scale·ratios[i]. They multiply
// by the inverse scale where quantizeValue divides by it, which can round
// a value within an ulp of a midpoint the other way: they rank
// candidates, they do not make codes. A NaN in v makes them NaN, which
// never compares lower (such a weight is refused anyway).
func roundingErrors(v []float32, scale float32, zp, qmin, qmax int32, ratios [3]float32) [3]float32 {
	var s, inv, e [3]float32
	for i, r := range ratios {
		s[i] = scale * r
		inv[i] = 1 / s[i]
	}
	// Codes less the zero point, clamped in integers: min and max of
	// integers are branch-free, where saturating floats would branch on
	// the block's few outliers.
	lo, hi := qmin-zp, qmax-zp
	for _, x := range v {
		// The three candidates are independent chains: the loop is
		// bound by throughput, not by the latency of one sum.
		q0 := min(max(roundInt(x*inv[0]), lo), hi)
		q1 := min(max(roundInt(x*inv[1]), lo), hi)
		q2 := min(max(roundInt(x*inv[2]), lo), hi)
		d0, d1, d2 := x-float32(q0)*s[0], x-float32(q1)*s[1], x-float32(q2)*s[2]
		e[0] += d0 * d0
		e[1] += d1 * d1
		e[2] += d2 * d2
	}
	return e
}
