package distill

// The matrix products of the kernels, in the two forms that run on fast
// vector kernels (see vec.go): both read rows contiguously.

// rows says where the rows of a matrix operand start in its slice: row
// r at off[r], or at r·ld when off is nil. Offsets let a product read
// rows that are shifted views of one buffer (an implicit im2col).
type rows struct {
	ld  int
	off []int
}

func (r rows) at(i int) int {
	if r.off != nil {
		return r.off[i]
	}
	return i * r.ld
}

// offsets returns r's row offsets as a slice.
func (r rows) offsets(k int) []int {
	if r.off != nil {
		return r.off[:k]
	}
	off := make([]int, k)
	for i := range off {
		off[i] = i * r.ld
	}
	return off
}

// gemmNN computes c = a·b (+ c when acc) for row-major a [m,k] and c
// [m,n], and b [k,n] with rows placed as br says. A mostly-zero a (a
// pruned weight matrix) takes the sparse path, which costs only its
// non-zeros; a dense one the blocked vector kernel.
func gemmNN[T float](m, n, k int, a, b []T, br rows, c []T, acc bool) {
	if !acc {
		clear(c[:m*n])
	}
	if k > 0 {
		last := br.at(k-1) + n
		for kk := 0; kk < k; kk++ {
			last = max(last, br.at(kk)+n)
		}
		_ = b[last-1] // every row is inside b: the kernels do not check
	}
	a32, ok := any(a).([]float32)
	if !ok || m < 4 || n < 16 || !useAVX2 || density(a[:m*k]) < sparseBelow {
		gemmSparse(m, n, k, a, b, br, c)
		return
	}
	b32, c32 := any(b).([]float32), any(c).([]float32)
	offs := br.offsets(k)
	m4, n16 := m/4*4, n/16*16
	for i := 0; i < m4; i += 4 {
		for j := 0; j < n16; j += 16 {
			block4x16(k, a32[i*k:], k, b32[j:], offs, c32[i*n+j:], n)
		}
		// The last columns, fewer than 16.
		if n16 < n {
			for r := i; r < i+4; r++ {
				crow := c32[r*n+n16 : (r+1)*n]
				for kk, av := range a32[r*k : (r+1)*k] {
					if av != 0 {
						axpyGo(av, b32[offs[kk]+n16:offs[kk]+n], crow)
					}
				}
			}
		}
	}
	// The last rows, fewer than 4.
	if m4 < m {
		gemmSparse(m-m4, n, k, a[m4*k:], b, br, c[m4*n:])
	}
}

// sparseBelow is the density of a below which gemmNN skips zeros rather
// than running the dense kernel (which does about four times the work
// per second).
const sparseBelow = 0.3

// density is the fraction of non-zero values.
func density[T float](a []T) float64 {
	nz := 0
	for _, v := range a {
		if v != 0 {
			nz++
		}
	}
	return float64(nz) / float64(max(1, len(a)))
}

// gemmSparse adds a·b to c as sums of rows of b scaled by the non-zero
// entries of a, four rows at a time.
func gemmSparse[T float](m, n, k int, a, b []T, br rows, c []T) {
	var coef [4]T
	var rs [4][]T
	for i := 0; i < m; i++ {
		crow := c[i*n : (i+1)*n]
		cnt := 0
		for kk, av := range a[i*k : (i+1)*k] {
			if av == 0 {
				continue
			}
			o := br.at(kk)
			coef[cnt], rs[cnt] = av, b[o:o+n]
			cnt++
			if cnt == 4 {
				axpy4(&coef, rs[0], rs[1], rs[2], rs[3], crow)
				cnt = 0
			}
		}
		for j := 0; j < cnt; j++ {
			axpy(coef[j], rs[j], crow)
		}
	}
}

// gemmNT computes c = a·bᵀ (+ c when acc) for row-major a [m,k] and c
// [m,n], and b [n,k] with rows placed as br says, one dot product per
// entry. Entries where skip is true (when skip is not nil) are left
// alone: the gradients of pruned weights are never used. Rows of b are
// the outer loop: b is the larger operand in the kernels (a
// convolution's input), so each of its rows is read once while the rows
// of a stay in cache.
func gemmNT[T float](m, n, k int, a, b []T, br rows, c []T, acc bool, skip []bool) {
	for j := 0; j < n; j++ {
		o := br.at(j)
		brow := b[o : o+k]
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
