package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMatMulNBitsSymmetric4Bit(t *testing.T) {
	// K=20, N=2, blocks of 16: two blocks per column, the second short.
	const K, N = 20, 2
	w := make([]float32, K*N) // row-major [K, N]
	w[0*N+0] = 7.5            // column 0, block 0: absmax 7.5 -> scale 1
	for k := 1; k < 16; k++ {
		w[k*N+0] = 1
	}
	w[16*N+0] = -0.9375 // column 0, block 1: absmax 0.9375 -> scale 1/8
	w[17*N+0] = 0.875   // on the grid: the clip search keeps the whole range
	w[18*N+0] = 0.75
	w[19*N+0] = 0.375
	// Column 1 is all zero: scale 1.
	got, err := MatMulNBitsWeight(w, K, N, false, 4, 16, true)
	if err != nil {
		t.Fatal(err)
	}
	want := &NBits{
		K: K, N: N, Bits: 4, BlockSize: 16, KBlocks: 2, BlobSize: 8,
		B: []byte{
			// column 0, block 0: codes q+8 = [15, 9 x 15], low nibble first.
			0x9f, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99, 0x99,
			// column 0, block 1: [-8->0, 7->15, 6->14, 3->11] then padding
			// at the default zero point 8.
			0xf0, 0xbe, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
			// column 1: zeros.
			0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
			0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88, 0x88,
		},
		Scales: []float32{1, 0.125, 1, 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("MatMulNBitsWeight (-want +got):\n%s", diff)
	}
}

func TestMatMulNBitsAsymmetricPacksZeroPoints(t *testing.T) {
	// K=48, N=1, blocks of 16: three zero points, packed two per byte.
	const K = 48
	w := make([]float32, K)
	w[0], w[1] = -1, 2 // block 0: uint4 scale 0.2, zp 5
	w[16] = 1.5        // block 1: scale 0.1, zp 0
	w[32] = -3         // block 2: scale 0.2, zp 15
	got, err := MatMulNBitsWeight(w, K, 1, false, 4, 16, false)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]byte{0x05, 0x0f}, got.ZeroPoints); diff != "" {
		t.Errorf("zero points (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]float32{0.2, 0.1, 0.2}, got.Scales); diff != "" {
		t.Errorf("scales (-want +got):\n%s", diff)
	}
	// Block 0: -1 -> 0, 2 -> 15, zeros -> 5.
	if diff := cmp.Diff([]byte{0xf0, 0x55}, got.B[0:2]); diff != "" {
		t.Errorf("block 0 codes (-want +got):\n%s", diff)
	}
}

func TestMatMulNBits8Bit(t *testing.T) {
	// Symmetric 8-bit: int8 [-127, 127] shifted by 128, the default zero point.
	w := make([]float32, 16)
	w[0], w[1] = 127.0/64, -0.5
	got, err := MatMulNBitsWeight(w, 16, 1, false, 8, 16, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Scales[0] != 1.0/64 {
		t.Errorf("scale = %v, want 1/64", got.Scales[0])
	}
	if diff := cmp.Diff([]byte{255, 96, 128, 128}, got.B[:4]); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
	if got.ZeroPoints != nil {
		t.Errorf("symmetric weights got zero points %v", got.ZeroPoints)
	}
}

func TestMatMulNBitsTransposedMatchesPlain(t *testing.T) {
	// A Gemm transB=1 weight [N, K] must give the same blobs as its
	// transpose [K, N] given as a MatMul weight.
	r := rand.New(rand.NewPCG(5, 6))
	const K, N = 40, 3
	kn := make([]float32, K*N)
	nk := make([]float32, K*N)
	for k := range K {
		for n := range N {
			v := float32(r.NormFloat64())
			kn[k*N+n], nk[n*K+k] = v, v
		}
	}
	for _, bits := range []int{4, 8} {
		for _, sym := range []bool{true, false} {
			a, err := MatMulNBitsWeight(kn, K, N, false, bits, 16, sym)
			if err != nil {
				t.Fatal(err)
			}
			b, err := MatMulNBitsWeight(nk, K, N, true, bits, 16, sym)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(a, b); diff != "" {
				t.Errorf("bits %d symmetric %v: transposed differs (-plain +transposed):\n%s", bits, sym, diff)
			}
			back := a.Dequantize()
			for i := range kn {
				step := float32(0)
				for _, s := range a.Scales {
					step = max(step, s)
				}
				if d := float32(math.Abs(float64(back[i] - kn[i]))); d > step {
					t.Fatalf("bits %d symmetric %v: element %d error %v exceeds a step %v", bits, sym, i, d, step)
				}
			}
		}
	}
}

func TestMatMulNBitsRejectsBadInput(t *testing.T) {
	tests := []struct {
		name             string
		k, n, bits, size int
	}{
		{"bits 3", 16, 1, 3, 16},
		{"block size 8", 16, 1, 4, 8},
		{"block size 24", 24, 1, 4, 24},
		{"wrong length", 17, 1, 4, 16},
	}
	for _, tt := range tests {
		if _, err := MatMulNBitsWeight(make([]float32, 16), tt.k, tt.n, false, tt.bits, tt.size, true); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

// A NaN or an Inf anywhere in the weight is found as blocks' ranges are
// taken: the weight is refused, to be left in float.
func TestMatMulNBitsWeightNotFinite(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, at := range []int{0, 37, 16*8 - 1} {
			w := make([]float32, 16*8)
			for i := range w {
				w[i] = float32(i%7) - 3
			}
			w[at] = bad
			for _, transposed := range []bool{false, true} {
				if _, err := MatMulNBitsWeight(w, 16, 8, transposed, 4, 16, true); err != errNotFinite {
					t.Errorf("%v at %d (transposed %v): error %v, want errNotFinite", bad, at, transposed, err)
				}
			}
		}
	}
}
