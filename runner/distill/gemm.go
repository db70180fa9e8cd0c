package distill

// The matrix products of the kernels, in the two forms that run on fast
// vector kernels (see vec.go): both read rows contiguously.

// gemmNN computes c = a·b (+ c when acc) for row-major a [m,k], b [k,n],
// c [m,n], as sums of rows of b scaled by entries of a. Zero entries of
// a are skipped: a pruned weight matrix costs only its non-zeros.
func gemmNN[T float](m, n, k int, a, b, c []T, acc bool) {
	var coef [4]T
	var rows [4][]T
	for i := 0; i < m; i++ {
		crow := c[i*n : (i+1)*n]
		if !acc {
			clear(crow)
		}
		cnt := 0
		for kk, av := range a[i*k : (i+1)*k] {
			if av == 0 {
				continue
			}
			coef[cnt], rows[cnt] = av, b[kk*n:(kk+1)*n]
			cnt++
			if cnt == 4 {
				axpy4(&coef, rows[0], rows[1], rows[2], rows[3], crow)
				cnt = 0
			}
		}
		for j := 0; j < cnt; j++ {
			axpy(coef[j], rows[j], crow)
		}
	}
}

// gemmNT computes c = a·bᵀ (+ c when acc) for row-major a [m,k], b [n,k],
// c [m,n], one dot product per entry. Entries where skip is true (when
// skip is not nil) are left alone: the gradients of pruned weights are
// never used. Rows of b are the outer loop: b is the larger operand in
// the kernels (a convolution's columns), so each of its rows is read
// once while the rows of a stay in cache.
func gemmNT[T float](m, n, k int, a, b, c []T, acc bool, skip []bool) {
	for j := 0; j < n; j++ {
		brow := b[j*k : (j+1)*k]
		for i := 0; i < m; i++ {
			if skip != nil && skip[i*n+j] {
				continue
			}
			d := dot(a[i*k:(i+1)*k], brow)
			if acc {
				c[i*n+j] += d
			} else {
				c[i*n+j] = d
			}
		}
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

// scratch is a kernel's reusable work memory: a node runs once per step
// on one goroutine, so it can keep its buffers between steps instead of
// allocating them each time.
type scratch struct {
	f32 [][]float32
	f64 [][]float64
}

// buf returns scratch buffer i with n elements (contents undefined).
func buf[T float](s *scratch, i, n int) []T {
	switch any(*new(T)).(type) {
	case float32:
		for len(s.f32) <= i {
			s.f32 = append(s.f32, nil)
		}
		if cap(s.f32[i]) < n {
			s.f32[i] = make([]float32, n)
		}
		return any(s.f32[i][:n]).([]T)
	default:
		for len(s.f64) <= i {
			s.f64 = append(s.f64, nil)
		}
		if cap(s.f64[i]) < n {
			s.f64[i] = make([]float64, n)
		}
		return any(s.f64[i][:n]).([]T)
	}
}
