//go:build !amd64

package quantize

// useAVX2 is false: the kernels are amd64's.
var useAVX2 = false

// clipLanes has no use without the AVX2 kernels.
type clipLanes struct{}

// lanes leaves every column to the Go code.
func (j *nbitsJob) lanes(rows []float32, b, from, to, count int, l *clipLanes) int { return from }
