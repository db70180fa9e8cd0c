package hessian

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// Acc's H is 2·XᵀX/rows, however the rows arrive (one call, or across
// chunk flushes).
func TestAccHessian(t *testing.T) {
	tests := []struct {
		name string
		cols int
		rows int
		per  int // rows per Add
	}{
		{"one add", 3, 4, 4},
		{"row by row", 3, 5, 1},
		{"past a chunk", 2, 200_000, 50_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := make([]float32, tc.rows*tc.cols)
			for i := range x {
				x[i] = float32(math.Sin(float64(i)*0.7)) * float32(1+i%tc.cols)
			}
			a := NewAcc(tc.cols)
			for r := 0; r < tc.rows; r += tc.per {
				a.Add(x[r*tc.cols : min(r+tc.per, tc.rows)*tc.cols])
			}
			if a.Rows() != int64(tc.rows) {
				t.Errorf("Rows() = %d, want %d", a.Rows(), tc.rows)
			}
			want := make([]float64, tc.cols*tc.cols)
			for i := range tc.cols {
				for j := i; j < tc.cols; j++ {
					var s float64
					for r := range tc.rows {
						s += float64(x[r*tc.cols+i]) * float64(x[r*tc.cols+j])
					}
					want[i*tc.cols+j] = 2 * s / float64(tc.rows)
				}
			}
			if diff := cmp.Diff(want, a.Hessian(), cmpopts.EquateApprox(1e-9, 0)); diff != "" {
				t.Errorf("H (-want +got):\n%s", diff)
			}
		})
	}
}

// Prepare zeroes the weights of features that were always zero, dampens
// the diagonal and returns U with UᵀU = H⁻¹.
func TestPrepare(t *testing.T) {
	h := []float64{
		4, 1, 0,
		0, 3, 0,
		0, 0, 0, // feature 2 never non-zero
	}
	w := []float64{1, 2, 3, 4, 5, 6}
	u, err := Prepare(h, w, 2, 3, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{1, 2, 0, 4, 5, 0}, w); diff != "" {
		t.Errorf("weights (-want +got):\n%s", diff)
	}
	// damp·mean(diag) = 0.1·(4+3+1)/3
	d := 0.1 * 8 / 3
	hd := [3][3]float64{{4 + d, 1, 0}, {1, 3 + d, 0}, {0, 0, 1 + d}}
	// (UᵀU)·H = I
	for i := range 3 {
		for j := range 3 {
			var s float64
			for k := range 3 {
				var inv float64
				for m := range 3 {
					inv += u[m*3+i] * u[m*3+k]
				}
				s += inv * hd[k][j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Errorf("(UᵀU·H)[%d][%d] = %g, want %g", i, j, s, want)
			}
		}
	}
	if _, err := Prepare([]float64{-1, 0, 0, -1}, []float64{1, 1}, 1, 2, 0.01); err != ErrNotPositiveDefinite {
		t.Errorf("negative definite H: error = %v, want ErrNotPositiveDefinite", err)
	}
}
