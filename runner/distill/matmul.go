package distill

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// mmGeom is a matrix product y [m,n] = alpha · op(a) · op(b), where op
// transposes when the flag is set: a is [m,k] or [k,m], b [k,n] or [n,k].
type mmGeom struct {
	m, k, n        int
	transA, transB bool
	alpha          float64
}

// mmForward computes y. bt is scratch of k*n elements, at of m*k.
func mmForward[T float](g *mmGeom, a, b, y []T) {
	// The product is taken as op(a) [m,k] times the rows of op(b)ᵀ [n,k].
	a2 := a
	if g.transA {
		a2 = make([]T, g.m*g.k)
		transpose(g.k, g.m, a, a2)
	}
	bt := b
	if !g.transB {
		bt = make([]T, g.n*g.k)
		transpose(g.k, g.n, b, bt)
	}
	gemm(g.m, g.n, g.k, a2, bt, y, false)
	scale(y[:g.m*g.n], T(g.alpha))
}

// mmGradA computes da (in a's stored layout) from b and dy [m,n].
func mmGradA[T float](g *mmGeom, b, dy, da []T) {
	// d op(a) [m,k] = dy [m,n] · op(b)ᵀ; op(b) as [k,n] rows is b itself
	// unless b is stored transposed.
	bk := b
	if g.transB {
		bk = make([]T, g.k*g.n)
		transpose(g.n, g.k, b, bk)
	}
	if !g.transA {
		gemm(g.m, g.k, g.n, dy, bk, da, false)
	} else {
		tmp := make([]T, g.m*g.k)
		gemm(g.m, g.k, g.n, dy, bk, tmp, false)
		transpose(g.m, g.k, tmp, da)
	}
	scale(da[:g.m*g.k], T(g.alpha))
}

// mmGradB computes db (in b's stored layout) from a and dy [m,n].
func mmGradB[T float](g *mmGeom, a, dy, db []T) {
	// d op(b) [k,n] = op(a)ᵀ · dy: both operands are needed with m, the
	// summed axis, innermost.
	at := a // op(a)ᵀ as [k,m]
	if !g.transA {
		at = make([]T, g.k*g.m)
		transpose(g.m, g.k, a, at)
	}
	dyt := make([]T, g.n*g.m)
	transpose(g.m, g.n, dy, dyt)
	if g.transB {
		gemm(g.n, g.k, g.m, dyt, at, db, false)
	} else {
		gemm(g.k, g.n, g.m, at, dyt, db, false)
	}
	scale(db[:g.k*g.n], T(g.alpha))
}

func scale[T float](x []T, s T) {
	if s == 1 {
		return
	}
	for i := range x {
		x[i] *= s
	}
}

// matmul adds a 2-D matrix product node.
func matmul(geom mmGeom, a, b *G.Node, need []bool) (*G.Node, error) {
	g := geom
	shapeA, shapeB := a.Shape(), b.Shape()
	k := &kernel{name: "MatMul", need: need}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			mmForward(&g, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			mmForward(&g, data[float64](in[0]), data[float64](in[1]), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, _, dy *G.Node, need []bool) (G.Nodes, error) {
		grads := make(G.Nodes, 2)
		var err error
		if need[0] {
			b := &kernel{name: "MatMulGradA", need: []bool{false, false}}
			b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
				return dispatch(in[0], func() error {
					mmGradA(&g, data[float32](in[0]), data[float32](in[1]), data[float32](out))
					return nil
				}, func() error {
					mmGradA(&g, data[float64](in[0]), data[float64](in[1]), data[float64](out))
					return nil
				})
			}
			if grads[0], err = apply(b, shapeA, in[1], dy); err != nil {
				return nil, err
			}
		}
		if need[1] {
			b := &kernel{name: "MatMulGradB", need: []bool{false, false}}
			b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
				return dispatch(in[0], func() error {
					mmGradB(&g, data[float32](in[0]), data[float32](in[1]), data[float32](out))
					return nil
				}, func() error {
					mmGradB(&g, data[float64](in[0]), data[float64](in[1]), data[float64](out))
					return nil
				})
			}
			if grads[1], err = apply(b, shapeB, in[0], dy); err != nil {
				return nil, err
			}
		}
		return grads, nil
	}
	return apply(k, tensor.Shape{g.m, g.n}, a, b)
}
