package distill

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVectorKernels checks the AVX2 kernels against plain Go at every
// length around their unrolling boundaries.
func TestVectorKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 0; n <= 80; n++ {
		x := randFloats(rng, n, -1, 1)
		y := randFloats(rng, n+3, -1, 1) // longer: only the first n move
		want := append([]float32(nil), y...)
		axpyGo(0.37, x, want)
		got := append([]float32(nil), y...)
		axpy(float32(0.37), x, got)
		for i := range got {
			if math.Abs(float64(got[i]-want[i])) > 1e-6 {
				t.Fatalf("axpy n=%d: element %d is %g, want %g", n, i, got[i], want[i])
			}
		}
		if n >= 4 {
			a := [4]float32{0.5, -1.5, 2, 0.25}
			xs := [4][]float32{randFloats(rng, n, -1, 1), randFloats(rng, n, -1, 1), randFloats(rng, n, -1, 1), randFloats(rng, n, -1, 1)}
			want4 := append([]float32(nil), y[:n]...)
			axpy4Go(&a, xs[0], xs[1], xs[2], xs[3], want4)
			got4 := append([]float32(nil), y[:n]...)
			axpy4(&a, xs[0], xs[1], xs[2], xs[3], got4)
			for i := range got4 {
				if math.Abs(float64(got4[i]-want4[i])) > 1e-5 {
					t.Fatalf("axpy4 n=%d: element %d is %g, want %g", n, i, got4[i], want4[i])
				}
			}
		}
		var exact float64
		for i := range x {
			exact += float64(x[i]) * float64(y[i])
		}
		if d := dot(x, y); math.Abs(float64(d)-exact) > 1e-5 {
			t.Fatalf("dot n=%d: %g, want %g", n, d, exact)
		}
	}
	if !useAVX2 {
		t.Log("no AVX2/FMA on this CPU: checked the Go kernels only")
	}
}
