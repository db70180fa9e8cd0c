//go:build !amd64

package distill

func axpy32(a float32, x, y []float32) { axpyGo(a, x, y) }

func dot32(x, y []float32) float32 { return dotGo(x, y) }

func axpy4_32(a *[4]float32, x0, x1, x2, x3, y []float32) { axpy4Go(a, x0, x1, x2, x3, y) }

func block4x16(k int, a []float32, lda int, b []float32, offs []int, c []float32, ldc int) bool {
	return false
}
