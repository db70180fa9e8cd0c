package quantize

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/google/go-cmp/cmp"
)

// The assembly reads clipLanes and clipConsts at these offsets.
func TestClipLanesLayout(t *testing.T) {
	var l clipLanes
	var c clipConsts
	got := []uintptr{unsafe.Offsetof(l.scale), unsafe.Offsetof(l.zp), unsafe.Offsetof(l.codes),
		unsafe.Offsetof(c.ratios), unsafe.Offsetof(c.qmin), unsafe.Offsetof(c.qmax), unsafe.Offsetof(c.shift)}
	if diff := cmp.Diff([]uintptr{0, 32, 64, 0, 12, 16, 20}, got); diff != "" {
		t.Errorf("offsets (-lanes_amd64.s +Go):\n%s", diff)
	}
}

// The AVX2 kernels quantize to the very bytes of the Go code: blocks of
// 16 to 128 rows, with and without zero points, columns short of eight,
// a short last block, values at midpoints of their scale, zero and
// constant columns, and ranges too small for a normal scale.
func TestLanesMatchGo(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2")
	}
	for _, tc := range []struct{ k, n, blockSize int }{
		{32, 8, 32}, {64, 61, 32}, {96, 40, 16}, {256, 24, 64}, {256, 16, 128}, {70, 19, 32},
	} {
		for _, symmetric := range []bool{false, true} {
			name := fmt.Sprintf("%dx%d/%d/symmetric=%v", tc.k, tc.n, tc.blockSize, symmetric)
			w := laneWeights(uint64(tc.k*tc.n), tc.k, tc.n)
			got, err := MatMulNBitsWeight(w, tc.k, tc.n, false, 4, tc.blockSize, symmetric)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var want *NBits
			withoutAVX2(func() { want, err = MatMulNBitsWeight(w, tc.k, tc.n, false, 4, tc.blockSize, symmetric) })
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s (-Go +AVX2):\n%s", name, diff)
			}
		}
	}
}

// laneWeights is a [k, n] Laplace weight with outliers whose column 1 is
// zero, column 2 constant, column 3 of subnormal values, and column 4
// made of midpoints of its blocks' scale and their neighbours.
func laneWeights(seed uint64, k, n int) []float32 {
	w := outlierWeights(seed, k, n)
	r := rand.New(rand.NewPCG(seed, 1))
	for row := range k {
		w[row*n+1] = 0
		w[row*n+2] = 0.25
		w[row*n+3] = float32(r.Float64()) * 0x1p-130
		// Midpoints of the scale of a block spanning [-1, 1.5] (15
		// steps of 2.5/15), where x·(1/s) may round apart from x/s.
		m := float32((float64(r.IntN(15)) + 0.5) * 2.5 / 15)
		w[row*n+4] = []float32{m - 1, math.Nextafter32(m-1, 2), -1, 1.5}[row%4]
	}
	return w
}

// A NaN or an Inf in any lane or row is found.
func TestLanesFindNotFinite(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2")
	}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		for _, at := range []int{0, 7, 5*16 + 3, 31*16 + 15} {
			w := outlierWeights(2, 32, 16)
			w[at] = bad
			if _, err := MatMulNBitsWeight(w, 32, 16, false, 4, 32, false); err != errNotFinite {
				t.Errorf("%v at %d: error %v, want errNotFinite", bad, at, err)
			}
		}
	}
}
