// Package hessian holds what the second-order layer-wise methods share:
// SparseGPT pruning (runner/prune) and GPTQ quantization
// (runner/quantize) both minimize a linear layer's output error
// ‖WX - ŴX‖² over calibration inputs X, whose Hessian with respect to
// each row of W is H = 2·XᵀX (rows of X are the layer's input vectors).
// Both sweep W's columns (input features) in order, fix each column's
// weights and push the error onto the columns not yet fixed through the
// upper Cholesky factor of H⁻¹ (Frantar & Alistarh, "Optimal Brain
// Compression", SparseGPT and GPTQ).
package hessian

import (
	"errors"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/lapack/lapack64"
	"gonum.org/v1/gonum/mat"
)

// ErrNotPositiveDefinite means the dampened Hessian has no Cholesky
// factorization: more dampening is needed.
var ErrNotPositiveDefinite = errors.New("the dampened Hessian is not positive definite")

// Acc accumulates XᵀX over rows of cols features.
type Acc struct {
	cols int
	h    []float64 // cols×cols, upper triangle
	rows int64
	buf  []float64
	fill int
}

// NewAcc makes an accumulator for rows of cols features.
func NewAcc(cols int) *Acc {
	// Rows are gathered in float64 and added with one rank-k update per
	// chunk of about 2 MB.
	return &Acc{cols: cols, h: make([]float64, cols*cols), buf: make([]float64, max(64, 1<<18/cols)*cols)}
}

// Cols is the number of features.
func (a *Acc) Cols() int { return a.cols }

// Rows is the number of rows added.
func (a *Acc) Rows() int64 { return a.rows + int64(a.fill) }

// Add adds the rows of x, row-major [n, cols].
func (a *Acc) Add(x []float32) {
	c := a.cols
	for r := 0; r+c <= len(x); r += c {
		copy64(a.buf[a.fill*c:(a.fill+1)*c], x[r:r+c])
		a.fill++
		if (a.fill+1)*c > len(a.buf) {
			a.flush()
		}
	}
}

// Sum returns the sum XᵀX so far (cols×cols, upper triangle valid, not
// scaled) and the rows in it: the partial a shard shares.
func (a *Acc) Sum() ([]float64, int64) {
	a.flush()
	return a.h, a.rows
}

// AccOf is an accumulator holding a sum Sum returned (a shard's partial
// read back); h is cols×cols.
func AccOf(cols int, h []float64, rows int64) *Acc {
	return &Acc{cols: cols, h: h, rows: rows}
}

// Merge adds b's rows to a's sum (nil is an empty sum) and returns a:
// partial sums of the same features, merged in a fixed order, give the
// same H whatever worker accumulated each.
func Merge(a, b *Acc) *Acc {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	a.flush()
	b.flush()
	for i, v := range b.h {
		a.h[i] += v
	}
	a.rows += b.rows
	return a
}

func copy64(dst []float64, src []float32) {
	for i, v := range src {
		dst[i] = float64(v)
	}
}

func (a *Acc) flush() {
	if a.fill == 0 {
		return
	}
	c := a.cols
	blas64.Syrk(blas.Trans, 1, blas64.General{Rows: a.fill, Cols: c, Stride: c, Data: a.buf[:a.fill*c]},
		1, blas64.Symmetric{Uplo: blas.Upper, N: c, Stride: c, Data: a.h})
	a.rows += int64(a.fill)
	a.fill = 0
}

// Hessian returns H = 2·XᵀX / rows (row-major, upper triangle valid),
// the scale SparseGPT and GPTQ use (the mean over rows, so dampening is
// relative to the data). The accumulator is spent.
func (a *Acc) Hessian() []float64 {
	a.flush()
	if a.rows > 0 {
		s := 2 / float64(a.rows)
		for i := range a.h {
			a.h[i] *= s
		}
	}
	h := a.h
	a.h, a.buf = nil, nil
	return h
}

// Prepare readies H (cols×cols, upper triangle) and the weights w (rows×
// cols, row-major) for a sweep, as sparsegpt.py and gptq.py do: features
// that were always zero (H_ii = 0) get H_ii = 1 and their weights are
// zeroed (they carry nothing on the calibration data); damp·mean(diag H)
// is added to the diagonal. It returns U, upper triangular (row-major),
// with H⁻¹ = UᵀU: row i of U holds what fixing column i needs once the
// columns before it are fixed, U_ii² being [H⁻¹]_ii of the remaining
// columns and U_i,j>i / U_ii the compensation direction. H is consumed.
func Prepare(h, w []float64, rows, cols int, damp float64) ([]float64, error) {
	var mean float64
	for i := 0; i < cols; i++ {
		if h[i*cols+i] == 0 {
			h[i*cols+i] = 1
			for r := 0; r < rows; r++ {
				w[r*cols+i] = 0
			}
		}
		mean += h[i*cols+i]
	}
	mean /= float64(cols)
	for i := 0; i < cols; i++ {
		h[i*cols+i] += damp * mean
	}
	return UpperCholeskyOfInverse(h, cols)
}

// UpperCholeskyOfInverse returns U, upper triangular, row-major n×n, with
// H⁻¹ = UᵀU, for a symmetric positive definite H (row-major, upper
// triangle read; h is left as it is).
//
// U is computed in one n×n buffer: H's upper triangle is factorized,
// inverted from its factor and the inverse factorized again, in place.
// These are the LAPACK calls mat.Cholesky makes (Factorize, InverseTo,
// Factorize, UTo) on the same values, so U is the same to the bit, with
// the same refusal of an H whose condition number is past
// mat.ConditionTolerance; mat.Cholesky would hold four more n×n copies
// on the way (300 MB for a 3073-input layer).
func UpperCholeskyOfInverse(h []float64, n int) ([]float64, error) {
	u := make([]float64, n*n)
	for i := 0; i < n; i++ {
		copy(u[i*n+i:(i+1)*n], h[i*n+i:(i+1)*n])
	}
	a := blas64.Symmetric{Uplo: blas.Upper, N: n, Stride: n, Data: u}
	work := make([]float64, 3*n)
	norm := lapack64.Lansy(mat.CondNorm, a, work)
	t, ok := lapack64.Potrf(a)
	if !ok || 1/lapack64.Pocon(a, norm, work, make([]int, n)) > mat.ConditionTolerance {
		return nil, ErrNotPositiveDefinite
	}
	if _, ok := lapack64.Potri(t); !ok {
		return nil, ErrNotPositiveDefinite
	}
	// The routines read and write the upper triangle only: the lower one
	// stays zero, as U's.
	if _, ok := lapack64.Potrf(a); !ok {
		return nil, ErrNotPositiveDefinite
	}
	return u, nil
}

// Propagate pushes the errors of the block of columns [i1, i2) onto the
// columns after it: W[:, i2:] -= E·U[i1:i2, i2:], with E rows×(i2-i1)
// row-major (the lazy batch update: one matrix product per block instead
// of one rank-1 update per column).
func Propagate(w, u, errs []float64, rows, cols, i1, i2 int) {
	if i2 >= cols {
		return
	}
	count := i2 - i1
	blas64.Gemm(blas.NoTrans, blas.NoTrans, -1,
		blas64.General{Rows: rows, Cols: count, Stride: count, Data: errs},
		blas64.General{Rows: count, Cols: cols - i2, Stride: cols, Data: u[i1*cols+i2:]},
		1, blas64.General{Rows: rows, Cols: cols - i2, Stride: cols, Data: w[i2:]})
}
