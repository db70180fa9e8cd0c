package distill

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

var blasImpl gonum.Implementation

// gemm computes c = a·bᵀ (+ c when acc) for row-major a [m,k], b [n,k],
// c [m,n]. Every product in the kernels is arranged in this form because
// it is gonum's fastest: each element is one contiguous dot product
// (about twice the speed of the other layouts measured on mnist-8's
// shapes).
func gemm[T float](m, n, k int, a, b, c []T, acc bool) {
	if m == 0 || n == 0 {
		return
	}
	var beta T
	if acc {
		beta = 1
	}
	if k == 0 {
		if !acc {
			clear(c[:m*n])
		}
		return
	}
	switch a := any(a).(type) {
	case []float32:
		blasImpl.Sgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, any(b).([]float32), k, float32(beta), any(c).([]float32), n)
	case []float64:
		blasImpl.Dgemm(blas.NoTrans, blas.Trans, m, n, k, 1, a, k, any(b).([]float64), k, float64(beta), any(c).([]float64), n)
	}
}

// transpose writes the [rows, cols] matrix src as [cols, rows] into dst.
func transpose[T float](rows, cols int, src, dst []T) {
	const blk = 32
	for i0 := 0; i0 < rows; i0 += blk {
		i1 := min(i0+blk, rows)
		for j0 := 0; j0 < cols; j0 += blk {
			j1 := min(j0+blk, cols)
			for i := i0; i < i1; i++ {
				row := src[i*cols:]
				for j := j0; j < j1; j++ {
					dst[j*rows+i] = row[j]
				}
			}
		}
	}
}
