package quantize

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
	return clipped(v, lo, hi, ComputeParams(lo, hi, t, symmetric), t, symmetric)
}

// clipped is blockParams given p, ComputeParams of the range: a quantizer
// that has the ranges of many blocks computes their parameters together,
// where one block's divisions overlap the next's instead of each waiting
// for its own.
func clipped(v []float32, lo, hi float32, p Params, t QType, symmetric bool) Params {
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

// roundingErrors are the squared errors of rounding v to codes in [qmin,
// qmax] with zero point zp and each scale scale·ratios[i]. They multiply
// by the inverse scale where quantizeValue divides by it, which can round
// a value within an ulp of a midpoint the other way: they rank
// candidates, they do not make codes. A NaN in v makes them NaN, which
// never compares lower (such a weight is refused anyway).
func roundingErrors(v []float32, scale float32, zp, qmin, qmax int32, ratios [3]float32) [3]float32 {
	// One variable per candidate, not arrays: the compiler keeps arrays
	// indexed in a loop in memory, which chains each sum through a store
	// and a load.
	s0, s1, s2 := scale*ratios[0], scale*ratios[1], scale*ratios[2]
	inv0, inv1, inv2 := 1/s0, 1/s1, 1/s2
	var e0, e1, e2 float32
	// Codes less the zero point, clamped in integers: min and max of
	// integers are branch-free, where saturating floats would branch on
	// the block's few outliers.
	lo, hi := qmin-zp, qmax-zp
	for _, x := range v {
		// The three candidates are independent chains: the loop is
		// bound by throughput, not by the latency of one sum.
		q0 := min(max(roundInt(x*inv0), lo), hi)
		q1 := min(max(roundInt(x*inv1), lo), hi)
		q2 := min(max(roundInt(x*inv2), lo), hi)
		d0, d1, d2 := x-float32(q0)*s0, x-float32(q1)*s1, x-float32(q2)*s2
		e0 += d0 * d0
		e1 += d1 * d1
		e2 += d2 * d2
	}
	return [3]float32{e0, e1, e2}
}
