package distill

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// lossGeom is the distillation loss over a batch of b rows of k logits:
//
//	L = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1−α)·CE(softmax(s), y)
//
// averaged over the rows. The teacher's softened distribution
// softmax(t/T) is computed once per dataset and fed in; the hard term is
// left out when there are no labels (α is then 1).
type lossGeom struct {
	b, k   int
	t      float64 // temperature
	alpha  float64
	labels bool
}

// logSoftmaxRow writes log softmax(x/t) of one row into out, stably.
func logSoftmaxRow[T float](x []T, t float64, out []float64) {
	m := float64(x[0])
	for _, v := range x[1:] {
		m = max(m, float64(v))
	}
	var sum float64
	for _, v := range x {
		sum += math.Exp((float64(v) - m) / t)
	}
	ls := math.Log(sum)
	for i, v := range x {
		out[i] = (float64(v)-m)/t - ls
	}
}

// lossForward returns L for logits s, soft targets p and labels y (class
// indices as floats, nil without labels).
func lossForward[T float](g *lossGeom, s, p, y []T) float64 {
	ls := make([]float64, g.k)
	var soft, hard float64
	for r := 0; r < g.b; r++ {
		row, pr := s[r*g.k:][:g.k], p[r*g.k:][:g.k]
		if g.alpha > 0 {
			logSoftmaxRow(row, g.t, ls)
			for i, q := range pr {
				if q > 0 {
					soft += float64(q) * (math.Log(float64(q)) - ls[i])
				}
			}
		}
		if g.labels && g.alpha < 1 {
			logSoftmaxRow(row, 1, ls)
			hard -= ls[int(y[r])]
		}
	}
	return (g.alpha*g.t*g.t*soft + (1-g.alpha)*hard) / float64(g.b)
}

// lossBackward writes dL/ds scaled by dl, the gradient flowing into L:
// α·T·(softmax(s/T) − p) + (1−α)·(softmax(s) − onehot(y)), over b.
func lossBackward[T float](g *lossGeom, s, p, y []T, dl float64, ds []T) {
	ls := make([]float64, g.k)
	for r := 0; r < g.b; r++ {
		row, pr, d := s[r*g.k:][:g.k], p[r*g.k:][:g.k], ds[r*g.k:][:g.k]
		clear(d)
		if g.alpha > 0 {
			logSoftmaxRow(row, g.t, ls)
			for i := range d {
				d[i] += T(g.alpha * g.t * (math.Exp(ls[i]) - float64(pr[i])))
			}
		}
		if g.labels && g.alpha < 1 {
			logSoftmaxRow(row, 1, ls)
			for i := range d {
				d[i] += T((1 - g.alpha) * math.Exp(ls[i]))
			}
			d[int(y[r])] -= T(1 - g.alpha)
		}
		for i := range d {
			d[i] *= T(dl / float64(g.b))
		}
	}
}

// distillLoss adds the loss node; labels may be nil.
func distillLoss(geom lossGeom, s, p, labels *G.Node) (*G.Node, error) {
	g := geom
	ins := []*G.Node{s, p}
	if labels != nil {
		ins = append(ins, labels)
	}
	k := &kernel{name: "DistillLoss", need: make([]bool, len(ins))}
	k.need[0] = true
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			data[float32](out)[0] = float32(lossForward(&g, data[float32](in[0]), data[float32](in[1]), optData[float32](in, 2)))
			return nil
		}, func() error {
			data[float64](out)[0] = lossForward(&g, data[float64](in[0]), data[float64](in[1]), optData[float64](in, 2))
			return nil
		})
	}
	shape := s.Shape()
	k.grad = func(in G.Nodes, _, dl *G.Node, _ []bool) (G.Nodes, error) {
		b := &kernel{name: "DistillLossGrad", need: make([]bool, len(in)+1)}
		b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
			last := len(in) - 1
			return dispatch(in[0], func() error {
				lossBackward(&g, data[float32](in[0]), data[float32](in[1]), optData[float32](in[:last], 2), float64(data[float32](in[last])[0]), data[float32](out))
				return nil
			}, func() error {
				lossBackward(&g, data[float64](in[0]), data[float64](in[1]), optData[float64](in[:last], 2), data[float64](in[last])[0], data[float64](out))
				return nil
			})
		}
		ds, err := apply(b, shape, append(append(G.Nodes{}, in...), dl)...)
		grads := make(G.Nodes, len(in))
		grads[0] = ds
		return grads, err
	}
	return apply(k, tensor.Shape{}, ins...)
}
