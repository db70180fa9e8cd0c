package prune

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// TestSparseGPTCompensation checks the OBS update against cases worked by
// hand. For one pruned weight p the optimal update of the others is
// δ = -w_p / [H⁻¹]_pp · H⁻¹[:, p], and the loss w_p² / [H⁻¹]_pp / 2.
func TestSparseGPTCompensation(t *testing.T) {
	tests := []struct {
		name     string
		rows     int
		w, h     []float64
		sparsity float64
		n, m     int
		starts   []int
		refit    bool
		want     []float64
		loss     float64
	}{{
		// H = [[2,1],[1,2]], H⁻¹ = [[2,-1],[-1,2]]/3. Scores w²/U_jj²:
		// U_00² = 2/3 gives 1.5; U_11² = 1/2 gives 2: w0 goes and
		// w1 += -1/(2/3) · (-1/3) = +0.5.
		name: "2x2 one row", rows: 1, sparsity: 0.5,
		w: []float64{1, 1}, h: []float64{2, 1, 1, 2},
		want: []float64{0, 1.5}, loss: 0.75,
	}, {
		// H = [[2,1,0],[1,2,1],[0,1,2]], H⁻¹ = [[3,-2,1],[-2,4,-2],[1,-2,3]]/4.
		// U_jj² = 3/4, 2/3, 1/2; w = (1,2,3) scores 4/3, 6, 18: w0 goes,
		// δ = -(1/(3/4)) · (3,-2,1)/4 = (-1, 2/3, -1/3).
		name: "3x3 one row", rows: 1, sparsity: 1.0 / 3,
		w: []float64{1, 2, 3}, h: []float64{2, 1, 0, 1, 2, 1, 0, 1, 2},
		want: []float64{0, 8.0 / 3, 8.0 / 3}, loss: 2.0 / 3,
	}, {
		// Two rows share H and the block's mask is chosen over both: the
		// 2 smallest of scores (1.5, 2 | 13.5, 0.5) are row 0's w0 and
		// row 1's w1. Row 0 goes as above; row 1's w1 is its last column,
		// nothing left to compensate: loss 0.5²/(1/2)/2 = 0.25.
		name: "2x2 two rows", rows: 2, sparsity: 0.5,
		w: []float64{1, 1, 3, 0.5}, h: []float64{2, 1, 1, 2},
		want: []float64{0, 1.5, 3, 0}, loss: 0.75 + 0.25,
	}, {
		// The same with the exact re-fit: row 1's kept w0 now makes up
		// for the pruned w1, ŵ0 = 3 + H00⁻¹·H01·w1 = 3 + 0.5/2 = 3.25,
		// loss ½dᵀHd with d = (-0.25, 0.5): 0.1875 instead of 0.25.
		name: "2x2 two rows, exact re-fit", rows: 2, sparsity: 0.5, refit: true,
		w: []float64{1, 1, 3, 0.5}, h: []float64{2, 1, 1, 2},
		want: []float64{0, 1.5, 3.25, 0}, loss: 0.75 + 0.1875,
	}, {
		// 1:2 on the 3x3 case with a group at column 0 and column 2 left
		// dense: the group (w0, w1) drops w0 (score 4/3 < 6), as above.
		name: "1:2 group plus a dense column", rows: 1, n: 1, m: 2, starts: []int{0},
		w: []float64{1, 2, 3}, h: []float64{2, 1, 0, 1, 2, 1, 0, 1, 2},
		want: []float64{0, 8.0 / 3, 8.0 / 3}, loss: 2.0 / 3,
	}, {
		// An input that was always zero (H_11 = 0): its weight goes for
		// free and nothing else moves.
		name: "dead input", rows: 1, sparsity: 0.5,
		w: []float64{2, 5}, h: []float64{4, 0, 0, 0},
		want: []float64{2, 0}, loss: 0,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cols := len(tc.w) / tc.rows
			s := &sweep{rows: tc.rows, cols: cols, w: append([]float64{}, tc.w...), h: append([]float64{}, tc.h...),
				sparsity: tc.sparsity, n: tc.n, m: tc.m, starts: tc.starts, block: 128}
			if tc.refit {
				s.refitBudget = refitBudget
			}
			loss, err := sparseGPT(s)
			if err != nil {
				t.Fatal(err)
			}
			approx := cmpopts.EquateApprox(0, 1e-12)
			if diff := cmp.Diff(tc.want, s.w, approx); diff != "" {
				t.Errorf("weights (-want +got):\n%s", diff)
			}
			if math.Abs(loss-tc.loss) > 1e-12 {
				t.Errorf("loss = %v, want %v", loss, tc.loss)
			}
		})
	}
}

// TestSparseGPTLossIsOutputError checks on random data that the loss
// SparseGPT reports is the layer's real output error: with H = 2·XᵀX,
// ½·ΔW H ΔWᵀ summed over rows = Σ‖ΔW xᵢ‖², for unstructured and N:M
// masks and blocks smaller than the matrix (so the lazy block updates are
// exercised), with and without the exact re-fit.
func TestSparseGPTLossIsOutputError(t *testing.T) {
	const rows, cols, samples = 5, 12, 40
	rng := newRand(7)
	x := make([]float64, samples*cols)
	for i := range x {
		x[i] = rng.NormFloat64() + 0.5
	}
	w := make([]float64, rows*cols)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	gram := func() []float64 {
		h := make([]float64, cols*cols)
		for s := 0; s < samples; s++ {
			for i := 0; i < cols; i++ {
				for j := 0; j < cols; j++ {
					h[i*cols+j] += 2 * x[s*cols+i] * x[s*cols+j]
				}
			}
		}
		return h
	}
	for _, tc := range []struct {
		name     string
		sparsity float64
		n, m     int
		block    int
		refit    bool
	}{
		{"unstructured one block", 0.5, 0, 0, 128, false},
		{"unstructured blocks of 4", 0.5, 0, 0, 4, false},
		{"unstructured blocks of 4, re-fit", 0.5, 0, 0, 4, true},
		{"2:4 blocks of 4", 0, 2, 4, 4, false},
		{"1:3 blocks of 7", 0, 1, 3, 7, false},
		{"1:3 blocks of 7, re-fit", 0, 1, 3, 7, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var starts []int
			if tc.m > 0 {
				for c := 0; c+tc.m <= cols; c += tc.m {
					starts = append(starts, c)
				}
			}
			s := &sweep{rows: rows, cols: cols, w: append([]float64{}, w...), h: gram(),
				sparsity: tc.sparsity, n: tc.n, m: tc.m, starts: starts, block: tc.block}
			if tc.refit {
				s.refitBudget = refitBudget
			}
			loss, err := sparseGPT(s)
			if err != nil {
				t.Fatal(err)
			}
			var out float64
			for r := 0; r < rows; r++ {
				for i := 0; i < samples; i++ {
					var d float64
					for c := 0; c < cols; c++ {
						d += (w[r*cols+c] - s.w[r*cols+c]) * x[i*cols+c]
					}
					out += d * d
				}
			}
			if math.Abs(out-loss) > 1e-9*out {
				t.Errorf("reported loss %v, output error %v", loss, out)
			}
			if tc.refit != s.refitted {
				t.Errorf("refitted %v, want %v", s.refitted, tc.refit)
			}
			if tc.refit {
				// The re-fit is the least-squares optimum for its mask: no
				// worse than the sweep alone with the same mask.
				plain := &sweep{rows: rows, cols: cols, w: append([]float64{}, w...), h: gram(),
					sparsity: tc.sparsity, n: tc.n, m: tc.m, starts: starts, block: tc.block}
				sweepLoss, _ := sparseGPT(plain)
				if loss > sweepLoss+1e-12 {
					t.Errorf("re-fit loss %v above the sweep's %v", loss, sweepLoss)
				}
			}
			zeros := 0
			for _, v := range s.w {
				if v == 0 {
					zeros++
				}
			}
			want := rows * cols / 2
			if tc.m > 0 {
				want = rows * len(starts) * (tc.m - tc.n)
			}
			if zeros != want {
				t.Errorf("%d zeros, want %d", zeros, want)
			}
		})
	}
}

// TestSparseGPTKeepsEarlierZeros checks that weights already zero (an
// earlier stage's mask) stay zero: the compensation of weights pruned
// before them must not bring them back, even where a block holds more of
// them than its share of the sparsity, for unstructured and N:M masks, with
// and without the exact re-fit.
func TestSparseGPTKeepsEarlierZeros(t *testing.T) {
	const rows, cols, samples = 4, 12, 40
	rng := newRand(3)
	x := make([]float64, samples*cols)
	for i := range x {
		x[i] = rng.NormFloat64() + 0.5
	}
	h := make([]float64, cols*cols)
	for s := 0; s < samples; s++ {
		for i := 0; i < cols; i++ {
			for j := 0; j < cols; j++ {
				h[i*cols+j] += 2 * x[s*cols+i] * x[s*cols+j]
			}
		}
	}
	w := make([]float64, rows*cols)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	// The earlier mask: the last four columns of every row (all of the
	// last block of 4), and one weight in each earlier group.
	var zeros []int
	for r := 0; r < rows; r++ {
		for c := 8; c < cols; c++ {
			zeros = append(zeros, r*cols+c)
		}
		zeros = append(zeros, r*cols+r%4)
	}
	for _, i := range zeros {
		w[i] = 0
	}
	for _, tc := range []struct {
		name     string
		sparsity float64
		n, m     int
		refit    bool
	}{
		{"unstructured 50%", 0.5, 0, 0, false},
		{"unstructured 25%, re-fit", 0.25, 0, 0, true},
		{"2:4", 0, 2, 4, false},
		{"2:4, re-fit", 0, 2, 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var starts []int
			if tc.m > 0 {
				starts = []int{0, 4, 8}
			}
			s := &sweep{rows: rows, cols: cols, w: append([]float64{}, w...), h: append([]float64{}, h...),
				sparsity: tc.sparsity, n: tc.n, m: tc.m, starts: starts, block: 4, damp: 0.01}
			if tc.refit {
				s.refitBudget = refitBudget
			}
			if _, err := sparseGPT(s); err != nil {
				t.Fatal(err)
			}
			for _, i := range zeros {
				if s.w[i] != 0 {
					t.Errorf("weight %d (row %d, column %d) was zero and is now %v", i, i/cols, i%cols, s.w[i])
				}
			}
		})
	}
}
