package quantize

import (
	"math"
	"math/rand/v2"
	"testing"
)

// roundInt rounds half to even as math.RoundToEven does, midpoints and
// negative values included, up to 2^22.
func TestRoundInt(t *testing.T) {
	for _, f := range []float32{0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 7.49, 7.5, 8.5, -8.5, 0.49999997, 1 << 21, -(1 << 21) - 0.5, 1<<22 - 0.5} {
		if got, want := roundInt(f), int32(math.RoundToEven(float64(f))); got != want {
			t.Errorf("roundInt(%v) = %d, want %d", f, got, want)
		}
	}
}

// roundCodes gives quantizeValue's code for every value of a block, the
// values next to a midpoint of the scale included, where multiplying by
// the inverse scale rounds some of them the other way (the test fails
// unless it meets such values, so the division it falls back to is
// exercised).
func TestRoundCodes(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	apart := 0
	for _, tc := range []struct {
		t         QType
		symmetric bool
		shift     int32
	}{{UInt4, false, 0}, {Int4, true, 8}, {UInt8, false, 0}, {Int8, true, 128}} {
		qmin, qmax := tc.t.Range()
		for range 2000 {
			lo := -float32(r.ExpFloat64()) * float32(math.Pow(10, r.Float64()*8-6))
			hi := float32(r.ExpFloat64()) * float32(math.Pow(10, r.Float64()*8-6))
			p := ComputeParams(lo, hi, tc.t, tc.symmetric)
			p.Scale *= []float32{1, 0.97, 0.94, 0.86}[r.IntN(4)]
			var v []float32
			for range 16 {
				v = append(v, lo+(hi-lo)*r.Float32())
			}
			// Values at and next to midpoints (k+0.5)·scale.
			for k := qmin - p.ZeroPoint - 1; k <= qmax-p.ZeroPoint; k++ {
				m := float32((float64(k) + 0.5) * float64(p.Scale))
				for _, x := range []float32{m, math.Nextafter32(m, 0), math.Nextafter32(m, 1e30), math.Nextafter32(m, -1e30)} {
					if x >= lo && x <= hi {
						v = append(v, x)
					}
				}
			}
			got := make([]byte, len(v))
			roundCodes(got, v, p, qmin, qmax, tc.shift)
			for i, x := range v {
				want := byte(quantizeValue(x, p.Scale, p.ZeroPoint, qmin, qmax) + tc.shift)
				if got[i] != want {
					t.Fatalf("%v: %v with scale %v, zero point %d: code %d, want %d", tc.t, x, p.Scale, p.ZeroPoint, got[i], want)
				}
				if roundInt(x*(1/p.Scale)) != roundInt(x/p.Scale) {
					apart++
				}
			}
		}
	}
	if apart == 0 {
		t.Error("no value rounds apart multiplied by the inverse scale: the division's fallback is not tested")
	}
	t.Logf("%d values round apart multiplied by the inverse scale", apart)
}
