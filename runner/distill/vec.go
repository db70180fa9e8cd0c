package distill

// axpy adds a·x to y (len(y) >= len(x)).
func axpy[T float](a T, x, y []T) {
	if x32, ok := any(x).([]float32); ok {
		axpy32(float32(a), x32, any(y).([]float32))
		return
	}
	axpyGo(a, x, y)
}

// dot is Σ x[i]·y[i] over x (len(y) >= len(x)).
func dot[T float](x, y []T) T {
	if x32, ok := any(x).([]float32); ok {
		return T(dot32(x32, any(y).([]float32)))
	}
	return dotGo(x, y)
}

func axpyGo[T float](a T, x, y []T) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] += a * v
	}
}

func dotGo[T float](x, y []T) T {
	y = y[:len(x)]
	var s0, s1, s2, s3 T
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return s0 + s1 + s2 + s3
}

// axpy4 adds a[0]·x0 + a[1]·x1 + a[2]·x2 + a[3]·x3 to y: one pass over y
// for four products.
func axpy4[T float](a *[4]T, x0, x1, x2, x3, y []T) {
	if y32, ok := any(y).([]float32); ok {
		axpy4_32(any(a).(*[4]float32), any(x0).([]float32), any(x1).([]float32), any(x2).([]float32), any(x3).([]float32), y32)
		return
	}
	axpy4Go(a, x0, x1, x2, x3, y)
}

func axpy4Go[T float](a *[4]T, x0, x1, x2, x3, y []T) {
	n := len(y)
	x0, x1, x2, x3 = x0[:n], x1[:n], x2[:n], x3[:n]
	for i := range y {
		y[i] += a[0]*x0[i] + a[1]*x1[i] + a[2]*x2[i] + a[3]*x3[i]
	}
}
