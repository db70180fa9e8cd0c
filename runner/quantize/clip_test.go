package quantize

import (
	"fmt"
	"math"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
)

// outlierWeights is a [k, n] Laplace weight with one weight in 97 six
// times larger: the few large weights a trained layer's blocks hold.
func outlierWeights(seed uint64, k, n int) []float32 {
	w := laplaceWeights(seed, k*n, 1/math.Sqrt(float64(k)))
	for i := 0; i < len(w); i += 97 {
		w[i] *= 6
	}
	return w
}

// wholeRange is round to nearest on each block's whole range (the
// quantizer before the clip search), dequantized: [k, n] blocks of
// blockSize along k.
func wholeRange(w []float32, k, n, blockSize int, t QType, symmetric bool) []float32 {
	qmin, qmax := t.Range()
	out := make([]float32, len(w))
	for c := range n {
		for first := 0; first < k; first += blockSize {
			last := min(first+blockSize, k)
			lo, hi := w[first*n+c], w[first*n+c]
			for j := first; j < last; j++ {
				lo, hi = min(lo, w[j*n+c]), max(hi, w[j*n+c])
			}
			p := ComputeParams(lo, hi, t, symmetric)
			for j := first; j < last; j++ {
				out[j*n+c] = p.Dequantize(quantizeValue(w[j*n+c], p.Scale, p.ZeroPoint, qmin, qmax))
			}
		}
	}
	return out
}

// The clip search lowers 4-bit round to nearest's layer output error on
// a weight with outliers, symmetric or not, and no block's squared error
// rises over its whole range's (the search tries the whole range first);
// asymmetric blocks (a zero point each) beat symmetric ones.
func TestClipSearchLowersLayerError(t *testing.T) {
	const k, n, rows, bs = 256, 64, 256, 32
	w := outlierWeights(11, k, n)
	x := layerInputs(12, rows, k)
	errs := map[bool]float64{}
	for _, symmetric := range []bool{true, false} {
		t.Run(fmt.Sprintf("symmetric %v", symmetric), func(t *testing.T) {
			q, err := MatMulNBitsWeight(w, k, n, false, 4, bs, symmetric)
			if err != nil {
				t.Fatal(err)
			}
			clipped := q.Dequantize()
			whole := wholeRange(w, k, n, bs, nbitsType(4, symmetric), symmetric)
			for c := range n {
				for first := 0; first < k; first += bs {
					var eClip, eWhole float64
					for j := first; j < first+bs; j++ {
						i := j*n + c
						eClip += sq(clipped[i] - w[i])
						eWhole += sq(whole[i] - w[i])
					}
					if eClip > eWhole*(1+1e-6) {
						t.Fatalf("column %d block at %d: squared error %.4g, whole range %.4g", c, first, eClip, eWhole)
					}
				}
			}
			eClip, eWhole := outputError(x, rows, k, w, clipped, n), outputError(x, rows, k, w, whole, n)
			// Symmetric blocks gain less: their zero point cannot move,
			// so an outlier of either sign holds both ends of the range.
			want := map[bool]float64{true: 0.995, false: 0.97}[symmetric]
			if !(eClip < want*eWhole) {
				t.Errorf("output error %.4f, whole range %.4f: want below %.3fx", eClip, eWhole, want)
			}
			t.Logf("output error %.4f, whole range %.4f (%.3fx)", eClip, eWhole, eClip/eWhole)
			errs[symmetric] = eClip
		})
	}
	if !(errs[false] < errs[true]) {
		t.Errorf("asymmetric output error %.4f, symmetric %.4f: want asymmetric lower", errs[false], errs[true])
	}
}

func sq(d float32) float64 { return float64(d) * float64(d) }

// ONNX Runtime's MatMulNBits computes X·W with the blocks, scales and
// packed zero points MatMulNBitsWeight makes exactly as Dequantize reads
// them: K not a multiple of the block (a short last block), an odd count
// of blocks (a zero point alone in its byte), 4 and 8 bits.
func TestMatMulNBitsZeroPointsInORT(t *testing.T) {
	tests := []struct{ k, n, bits, blockSize int }{
		{80, 24, 4, 32},  // 3 blocks: zero points in 2 bytes, the second half empty
		{128, 16, 4, 32}, // 4 blocks
		{72, 8, 8, 16},   // 5 blocks, one byte each
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("K %d N %d bits %d block %d", tc.k, tc.n, tc.bits, tc.blockSize), func(t *testing.T) {
			const rows = 6
			w := outlierWeights(21, tc.k, tc.n)
			q, err := MatMulNBitsWeight(w, tc.k, tc.n, false, tc.bits, tc.blockSize, false)
			if err != nil {
				t.Fatal(err)
			}
			if q.ZeroPoints == nil {
				t.Fatal("asymmetric weight without zero points")
			}
			b := newBuilder(1)
			xName := b.Input("x", rows, tc.k)
			bName := b.Init("b", onnx.NewTensor([]int64{int64(tc.n), int64(q.KBlocks), int64(q.BlobSize)}, q.B))
			sName := b.Init("scales", onnx.NewTensor([]int64{int64(tc.n), int64(q.KBlocks)}, q.Scales))
			zName := b.Init("zero_points", onnx.NewTensor([]int64{int64(tc.n), int64(q.ZeroPointsPerRow())}, q.ZeroPoints))
			b.NamedNode("MatMulNBits", "mm", []string{xName, bName, sName, zName}, []string{"y"},
				onnx.AttrInt("K", int64(tc.k)), onnx.AttrInt("N", int64(tc.n)), onnx.AttrInt("bits", int64(tc.bits)), onnx.AttrInt("block_size", int64(tc.blockSize)))
			b.Nodes[0].Domain = ptr(msDomain)
			m := b.Model(17, "y")
			m.SetOpset(msDomain, 1)

			x := layerInputs(22, rows, tc.k)
			got, err := run(t, m, map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{rows, int64(tc.k)}, x)})["y"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			deq := q.Dequantize()
			var num, den float64
			for r := range rows {
				for c := range tc.n {
					var want float64
					for j := range tc.k {
						want += float64(x[r*tc.k+j]) * float64(deq[j*tc.n+c])
					}
					d := float64(got[r*tc.n+c]) - want
					num, den = num+d*d, den+want*want
				}
			}
			if rel := math.Sqrt(num / den); rel > 1e-5 {
				t.Errorf("ONNX Runtime's output differs from X·Dequantize() by %.3g (relative), want <= 1e-5", rel)
			}
		})
	}
}
