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

// eachKernelSet runs f with the vector kernels the CPU has, then, when
// those are the AVX2 ones, again with the pure Go fallback that CPUs
// without AVX2 and FMA run, so both are tested on any machine.
func eachKernelSet(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	if !useAVX2 {
		t.Run("go", f)
		return
	}
	t.Run("avx2", f)
	useAVX2 = false
	defer func() { useAVX2 = true }()
	t.Run("go", f)
}

// TestGemmNN checks the blocked and the sparse products against a plain
// triple loop, on shapes with and without remainders, with each kernel set.
func TestGemmNN(t *testing.T) { eachKernelSet(t, testGemmNN) }

func testGemmNN(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, sz := range [][3]int{{4, 16, 1}, {12, 196, 150}, {7, 37, 5}, {150, 196, 12}, {3, 10, 4}, {8, 784, 25}} {
		m, n, k := sz[0], sz[1], sz[2]
		for _, zeros := range []float64{0, 0.8} {
			a := randFloats(rng, m*k, -1, 1)
			for i := range a {
				if rng.Float64() < zeros {
					a[i] = 0
				}
			}
			b := randFloats(rng, k*n, -1, 1)
			c := randFloats(rng, m*n, -1, 1)
			want := append([]float32(nil), c...)
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var s float64
					for kk := 0; kk < k; kk++ {
						s += float64(a[i*k+kk]) * float64(b[kk*n+j])
					}
					want[i*n+j] += float32(s)
				}
			}
			gemmNN(m, n, k, a, b, rows{ld: n}, c, true)
			for i := range c {
				if math.Abs(float64(c[i]-want[i])) > 1e-4 {
					t.Fatalf("%dx%dx%d with %.0f%% zeros: element %d is %g, want %g", m, n, k, 100*zeros, i, c[i], want[i])
				}
			}
		}
	}
}
