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

// mmForward computes y = alpha·op(a)·op(b) as rows of op(b) [k,n].
func mmForward[T float](g *mmGeom, s *scratch, a, b, y []T) {
	a2 := a
	if g.transA {
		a2 = buf[T](s, 0, g.m*g.k)
		transpose(g.k, g.m, a, a2)
	}
	b2 := b
	if g.transB {
		b2 = buf[T](s, 1, g.k*g.n)
		transpose(g.n, g.k, b, b2)
	}
	gemmNN(g.m, g.n, g.k, a2, b2, rows{ld: g.n}, y, false)
	scale(y[:g.m*g.n], T(g.alpha))
}

// mmGradA computes da (in a's stored layout) from b and dy [m,n]:
// d op(a) [m,k] = dy·op(b)ᵀ, one dot product of rows per entry.
func mmGradA[T float](g *mmGeom, s *scratch, b, dy, da []T) {
	b2 := b // op(b) as [k,n]
	if g.transB {
		b2 = buf[T](s, 0, g.k*g.n)
		transpose(g.n, g.k, b, b2)
	}
	if !g.transA {
		gemmNT(g.m, g.k, g.n, dy, b2, rows{ld: g.n}, da, false, nil)
	} else {
		tmp := buf[T](s, 1, g.m*g.k)
		gemmNT(g.m, g.k, g.n, dy, b2, rows{ld: g.n}, tmp, false, nil)
		transpose(g.m, g.k, tmp, da)
	}
	scale(da[:g.m*g.k], T(g.alpha))
}

// mmGradB computes db (in b's stored layout) from a and dy [m,n]:
// d op(b) [k,n] = op(a)ᵀ·dy, as rows of dy scaled by entries of op(a)ᵀ
// (activations after a Relu are often zero and cost nothing).
func mmGradB[T float](g *mmGeom, s *scratch, a, dy, db []T) {
	at := a // op(a)ᵀ as [k,m]
	if !g.transA {
		at = buf[T](s, 0, g.k*g.m)
		transpose(g.m, g.k, a, at)
	}
	if !g.transB {
		gemmNN(g.k, g.n, g.m, at, dy, rows{ld: g.n}, db, false)
	} else {
		tmp := buf[T](s, 1, g.k*g.n)
		gemmNN(g.k, g.n, g.m, at, dy, rows{ld: g.n}, tmp, false)
		transpose(g.k, g.n, tmp, db)
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
	var sf, sa, sb scratch
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			mmForward(&g, &sf, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			mmForward(&g, &sf, data[float64](in[0]), data[float64](in[1]), data[float64](out))
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
					mmGradA(&g, &sa, data[float32](in[0]), data[float32](in[1]), data[float32](out))
					return nil
				}, func() error {
					mmGradA(&g, &sa, data[float64](in[0]), data[float64](in[1]), data[float64](out))
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
					mmGradB(&g, &sb, data[float32](in[0]), data[float32](in[1]), data[float32](out))
					return nil
				}, func() error {
					mmGradB(&g, &sb, data[float64](in[0]), data[float64](in[1]), data[float64](out))
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
