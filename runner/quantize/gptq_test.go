package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"

	hess "github.com/kompress/kompress/runner/hessian"
)

// layerInputs draws rows of k features as a transformer layer reads
// them: correlated (a few latent factors mixed the same way in every
// draw), with a few outlier features an order of magnitude larger. seed
// draws the rows: another seed is held-out data of the same layer.
func layerInputs(seed uint64, rows, k int) []float32 {
	const factors = 8
	mr := rand.New(rand.NewPCG(0, 2))
	mix := make([]float64, factors*k)
	for i := range mix {
		mix[i] = mr.NormFloat64()
	}
	r := rand.New(rand.NewPCG(seed, 2))
	x := make([]float32, rows*k)
	z := make([]float64, factors)
	for i := range rows {
		for f := range z {
			z[f] = r.NormFloat64()
		}
		for j := range k {
			v := 0.5 * r.NormFloat64()
			for f := range z {
				v += z[f] * mix[f*k+j] / math.Sqrt(factors)
			}
			if j%29 == 3 {
				v *= 12 // outlier features
			}
			x[i*k+j] = float32(v)
		}
	}
	return x
}

func laplaceWeights(seed uint64, n int, std float64) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	w := make([]float32, n)
	for i := range w {
		u := r.Float64() - 0.5
		w[i] = float32(-std / math.Sqrt2 * math.Copysign(math.Log(1-2*math.Abs(u)), u))
	}
	return w
}

// outputError is ‖X·Ŵ - X·W‖ / ‖X·W‖ for X [rows, k] and W, Ŵ [k, n].
func outputError(x []float32, rows, k int, w, q []float32, n int) float64 {
	var num, den float64
	for i := range rows {
		for c := range n {
			var y, yq float64
			for j := range k {
				xv := float64(x[i*k+j])
				y += xv * float64(w[j*n+c])
				yq += xv * float64(q[j*n+c])
			}
			num += (yq - y) * (yq - y)
			den += y * y
		}
	}
	return math.Sqrt(num / den)
}

func hessianOf(x []float32, k int) []float64 {
	a := hess.NewAcc(k)
	a.Add(x)
	return a.Hessian()
}

// GPTQ's layer output error on held-out inputs of the same distribution
// is well below round to nearest's, at 4 and 8 bits, symmetric or not
// (GPTQ papers report large gains at 4 bits on correlated inputs).
func TestGPTQBeatsRoundToNearest(t *testing.T) {
	const k, n, rows = 256, 96, 2048
	calib := layerInputs(1, rows, k)
	held := layerInputs(2, 512, k)
	w := laplaceWeights(3, k*n, 1/math.Sqrt(k))
	tests := []struct {
		bits      int
		symmetric bool
		maxRatio  float64
	}{
		{4, true, 0.7},
		{4, false, 0.7},
		{8, true, 0.7},
	}
	for _, tc := range tests {
		rtn, err := MatMulNBitsWeight(w, k, n, false, tc.bits, 32, tc.symmetric)
		if err != nil {
			t.Fatal(err)
		}
		m, err := gptqMatrixOf(w, []int64{k, n}, 0)
		if err != nil {
			t.Fatal(err)
		}
		g, err := gptq(m, hessianOf(calib, k), DefaultGPTQDampening, 32, nbitsType(tc.bits, tc.symmetric), tc.symmetric)
		if err != nil {
			t.Fatal(err)
		}
		eRTN := outputError(held, 512, k, w, rtn.Dequantize(), n)
		eGPTQ := outputError(held, 512, k, w, g.nbits(tc.bits, tc.symmetric).Dequantize(), n)
		if eGPTQ > tc.maxRatio*eRTN {
			t.Errorf("%d bits symmetric %v: GPTQ output error %.4g, round to nearest %.4g: ratio %.2f, want <= %.2f",
				tc.bits, tc.symmetric, eGPTQ, eRTN, eGPTQ/eRTN, tc.maxRatio)
		}
		t.Logf("%d bits symmetric %v: output error GPTQ %.4g, RTN %.4g (ratio %.2f)", tc.bits, tc.symmetric, eGPTQ, eRTN, eGPTQ/eRTN)
	}
}

// With a diagonal Hessian (uncorrelated inputs) no error has anywhere to
// go: GPTQ rounds to nearest, so its MatMulNBits and DequantizeLinear
// layouts must be byte for byte those of MatMulNBitsWeight and Blocked,
// for [K, N] and transposed [N, K] weights, 4 and 8 bits, with and
// without zero points, K not a multiple of the block.
func TestGPTQLayoutMatchesRoundToNearest(t *testing.T) {
	tests := []struct {
		name      string
		k, n      int
		in        int
		bits      int
		symmetric bool
	}{
		{"int4 [K,N]", 64, 5, 0, 4, true},
		{"uint4 [K,N] short last block", 72, 3, 0, 4, false},
		{"int8 [N,K]", 48, 4, 1, 8, true},
		{"uint8 [N,K] short last block", 40, 6, 1, 8, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := laplaceWeights(7, tc.k*tc.n, 0.1)
			dims := []int64{int64(tc.k), int64(tc.n)}
			if tc.in == 1 {
				dims = []int64{int64(tc.n), int64(tc.k)}
			}
			h := make([]float64, tc.k*tc.k)
			for i := range tc.k {
				h[i*tc.k+i] = 1 + float64(i%5)
			}
			m, err := gptqMatrixOf(w, dims, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			g, err := gptq(m, h, DefaultGPTQDampening, 16, nbitsType(tc.bits, tc.symmetric), tc.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			want, err := MatMulNBitsWeight(w, tc.k, tc.n, tc.in == 1, tc.bits, 16, tc.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, g.nbits(tc.bits, tc.symmetric)); diff != "" {
				t.Errorf("MatMulNBits layout (-round to nearest +gptq):\n%s", diff)
			}
			qt := UInt8
			switch {
			case tc.bits == 4 && tc.symmetric:
				qt = Int4
			case tc.bits == 4:
				qt = UInt4
			case tc.symmetric:
				qt = Int8
			}
			m, _ = gptqMatrixOf(w, dims, tc.in)
			for i := range tc.k {
				h[i*tc.k+i] = 1 + float64(i%5)
			}
			g, err = gptq(m, h, DefaultGPTQDampening, 16, qt, tc.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			blocked, err := Blocked(w, dims, tc.in, 16, qt, tc.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(blocked, g.quantized(dims, tc.in)); diff != "" {
				t.Errorf("DequantizeLinear layout (-Blocked +gptq):\n%s", diff)
			}
		})
	}
}
