package distill

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// smGeom views a tensor as [outer, n, inner] with the softmax taken over
// n. Every row subtracts its own maximum first: gorgonia's SoftMax takes
// one maximum for the whole tensor, so a row such as [1000, 0, 0] next
// to small ones gives NaN (see NOTES).
type smGeom struct {
	outer, n, inner int
	log             bool
}

func softmaxForward[T float](g *smGeom, x, y []T) {
	for o := 0; o < g.outer; o++ {
		for in := 0; in < g.inner; in++ {
			base := o*g.n*g.inner + in
			m := x[base]
			for i := 1; i < g.n; i++ {
				m = max(m, x[base+i*g.inner])
			}
			var sum float64
			for i := 0; i < g.n; i++ {
				sum += math.Exp(float64(x[base+i*g.inner] - m))
			}
			if g.log {
				ls := T(math.Log(sum))
				for i := 0; i < g.n; i++ {
					y[base+i*g.inner] = x[base+i*g.inner] - m - ls
				}
				continue
			}
			for i := 0; i < g.n; i++ {
				y[base+i*g.inner] = T(math.Exp(float64(x[base+i*g.inner]-m)) / sum)
			}
		}
	}
}

// softmaxBackward computes dx from the output y and dy:
// softmax: dx = y·(dy − Σ dy·y); log-softmax: dx = dy − exp(y)·Σ dy.
func softmaxBackward[T float](g *smGeom, y, dy, dx []T) {
	for o := 0; o < g.outer; o++ {
		for in := 0; in < g.inner; in++ {
			base := o*g.n*g.inner + in
			var s T
			for i := 0; i < g.n; i++ {
				j := base + i*g.inner
				if g.log {
					s += dy[j]
				} else {
					s += dy[j] * y[j]
				}
			}
			for i := 0; i < g.n; i++ {
				j := base + i*g.inner
				if g.log {
					dx[j] = dy[j] - T(math.Exp(float64(y[j])))*s
				} else {
					dx[j] = y[j] * (dy[j] - s)
				}
			}
		}
	}
}

// softmax adds a (log-)softmax node.
func softmax(geom smGeom, x *G.Node, need bool) (*G.Node, error) {
	g := geom
	name := "Softmax"
	if g.log {
		name = "LogSoftmax"
	}
	shape := x.Shape()
	k := &kernel{name: name, need: []bool{need}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			softmaxForward(&g, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			softmaxForward(&g, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	k.grad = func(_ G.Nodes, y, dy *G.Node, _ []bool) (G.Nodes, error) {
		b := &kernel{name: name + "Grad", need: []bool{false, false}}
		b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
			return dispatch(in[0], func() error {
				softmaxBackward(&g, data[float32](in[0]), data[float32](in[1]), data[float32](out))
				return nil
			}, func() error {
				softmaxBackward(&g, data[float64](in[0]), data[float64](in[1]), data[float64](out))
				return nil
			})
		}
		dx, err := apply(b, shape, y, dy)
		return G.Nodes{dx}, err
	}
	return apply(k, shape, x)
}
