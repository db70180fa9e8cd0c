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
// first ratio, 1, keeps a block's error at most its plain range's.
var (
	clipAsymmetric = []float32{1, 0.97, 0.94}
	clipSymmetric  = []float32{1, 0.93, 0.86}
)

// blockParams returns the parameters of a block v of type t whose range
// is [lo, hi]: ComputeParams of the range, or at 4 bits of the shrunk
// range that rounds v with the least squared error.
func blockParams(v []float32, lo, hi float32, t QType, symmetric bool) Params {
	p := ComputeParams(lo, hi, t, symmetric)
	if t.Bits() != 4 {
		return p
	}
	ratios := clipAsymmetric
	if symmetric {
		ratios = clipSymmetric
	}
	qmin, qmax := t.Range()
	best := roundingError(v, p, float32(qmin), float32(qmax))
	for _, r := range ratios[1:] {
		c := ComputeParams(lo*r, hi*r, t, symmetric)
		if e := roundingError(v, c, float32(qmin), float32(qmax)); e < best {
			best, p = e, c
		}
	}
	return p
}

// roundMagic is 1.5·2^23: a float32 of magnitude below 2^22 plus it
// keeps no fraction, rounded half to even, so (x + roundMagic) -
// roundMagic rounds x without a call or a conversion.
const roundMagic = 12582912

// roundingError is the squared error of rounding v with p to codes in
// [qmin, qmax]. It multiplies by the inverse scale where quantizeValue
// divides by it, which can round a value that lies within an ulp of a
// midpoint the other way: it ranks candidates, it does not make codes.
// A NaN in v makes it NaN, which never compares lower (the weight is
// refused anyway).
func roundingError(v []float32, p Params, qmin, qmax float32) float32 {
	inv, zp := 1/p.Scale, float32(p.ZeroPoint)
	var e float32
	for _, x := range v {
		q := x*inv + roundMagic - roundMagic + zp
		if q < qmin {
			q = qmin
		} else if q > qmax {
			q = qmax
		}
		d := x - (q-zp)*p.Scale
		e += d * d
	}
	return e
}
