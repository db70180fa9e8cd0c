package distill

import "golang.org/x/sys/cpu"

// useAVX2 selects the AVX2/FMA kernels: the training loop's products run
// about twice as fast as gonum's SSE ones with them.
var useAVX2 = cpu.X86.HasAVX2 && cpu.X86.HasFMA

//go:noescape
func axpyAVX2(a float32, x, y []float32)

//go:noescape
func dotAVX2(x, y []float32) float32

func axpy32(a float32, x, y []float32) {
	if useAVX2 {
		axpyAVX2(a, x, y[:len(x)])
		return
	}
	axpyGo(a, x, y)
}

func dot32(x, y []float32) float32 {
	if useAVX2 {
		return dotAVX2(x, y[:len(x)])
	}
	return dotGo(x, y)
}

//go:noescape
func axpy4AVX2(a *[4]float32, x0, x1, x2, x3, y []float32)

func axpy4_32(a *[4]float32, x0, x1, x2, x3, y []float32) {
	if useAVX2 {
		n := len(y)
		axpy4AVX2(a, x0[:n], x1[:n], x2[:n], x3[:n], y)
		return
	}
	axpy4Go(a, x0, x1, x2, x3, y)
}

//go:noescape
func kern4x16AVX2(k int, a *float32, lda int, b *float32, offs *int, c *float32, ldc int)

// block4x16 adds A[0:4, 0:k]·B[0:k, 0:16] to C[0:4, 0:16]: A and C
// row-major with leading dimensions lda and ldc, row kk of B at
// b[offs[kk]:]. It returns false when there is no vector kernel.
func block4x16(k int, a []float32, lda int, b []float32, offs []int, c []float32, ldc int) bool {
	if !useAVX2 || k == 0 {
		return useAVX2
	}
	// Bounds the kernel relies on (offs are checked by the caller).
	_ = a[3*lda+k-1]
	_ = offs[k-1]
	_ = c[3*ldc+15]
	kern4x16AVX2(k, &a[0], lda, &b[0], &offs[0], &c[0], ldc)
	return true
}
