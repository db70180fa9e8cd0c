package hessian

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gonum.org/v1/gonum/mat"
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

// matCholeskyU is UpperCholeskyOfInverse as mat.Cholesky computes it,
// on copies of its own: the reference the in-place version must match
// to the bit.
func matCholeskyU(h []float64, n int) ([]float64, error) {
	var c mat.Cholesky
	if !c.Factorize(mat.NewSymDense(n, h)) {
		return nil, ErrNotPositiveDefinite
	}
	var inv mat.SymDense
	if err := c.InverseTo(&inv); err != nil {
		return nil, ErrNotPositiveDefinite
	}
	var ci mat.Cholesky
	if !ci.Factorize(&inv) {
		return nil, ErrNotPositiveDefinite
	}
	var t mat.TriDense
	ci.UTo(&t)
	raw := t.RawTriangular()
	u := make([]float64, n*n)
	for i := 0; i < n; i++ {
		copy(u[i*n+i:(i+1)*n], raw.Data[i*raw.Stride+i:i*raw.Stride+n])
	}
	return u, nil
}

// The factor computed in one buffer is mat.Cholesky's, bit for bit,
// past the size LAPACK switches to blocked code; H is left unchanged;
// what mat.Cholesky refuses (not positive definite, or a condition
// number past mat.ConditionTolerance) is refused.
func TestUpperCholeskyOfInverseIsMatCholeskys(t *testing.T) {
	spd := func(n int) []float64 {
		rng := rand.New(rand.NewPCG(7, uint64(n)))
		x := make([]float64, 2*n*n)
		for i := range x {
			x[i] = rng.NormFloat64()
		}
		h := make([]float64, n*n)
		for i := range n {
			for j := i; j < n; j++ {
				for r := range 2 * n {
					h[i*n+j] += x[r*n+i] * x[r*n+j]
				}
			}
		}
		return h
	}
	for _, tc := range []struct {
		name    string
		n       int
		h       []float64
		wantErr error
	}{
		{name: "3x3", n: 3, h: []float64{4, 1, 0.5, 0, 3, 0.2, 0, 0, 2}},
		{name: "blocked", n: 300, h: spd(300)},
		{name: "negative definite", n: 2, h: []float64{-1, 0, 0, -1}, wantErr: ErrNotPositiveDefinite},
		{name: "condition past tolerance", n: 2, h: []float64{1, 0, 0, 1e-17}, wantErr: ErrNotPositiveDefinite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := append([]float64{}, tc.h...)
			want, wantErr := matCholeskyU(tc.h, tc.n)
			got, err := UpperCholeskyOfInverse(h, tc.n)
			if err != tc.wantErr || wantErr != tc.wantErr {
				t.Fatalf("error %v, mat.Cholesky's %v; want %v", err, wantErr, tc.wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("U (-mat.Cholesky +in place):\n%s", diff)
			}
			if diff := cmp.Diff(tc.h, h); diff != "" {
				t.Errorf("H changed (-before +after):\n%s", diff)
			}
		})
	}
}
