package distill

import "math"

// Adam's constants, the usual ones.
const (
	adamBeta1 = 0.9
	adamBeta2 = 0.999
	adamEps   = 1e-8
)

// optimizer updates the params in place from averaged gradients. Weight
// decay is an L2 penalty added to the gradient (Options.WeightDecay)
// for both optimizers. Masked entries (weights pruned before) get no
// gradient and are set back to exactly zero after every update, so
// neither momentum nor rounding can revive them.
type optimizer struct {
	s     *settings
	total int64 // steps in the run, for the schedule
	t     int64 // steps taken
	m, v  [][]float32
}

func newOptimizer(s *settings, params []*param, total int64) *optimizer {
	o := &optimizer{s: s, total: total, m: make([][]float32, len(params))}
	if s.optimizer == Adam {
		o.v = make([][]float32, len(params))
	}
	for i, p := range params {
		o.m[i] = make([]float32, len(p.data))
		if o.v != nil {
			o.v[i] = make([]float32, len(p.data))
		}
	}
	return o
}

// rate is the learning rate of step t (0-based) under the schedule:
// constant; cosine decay to zero over the run; step: ×0.1 after each
// third of the run.
func (o *optimizer) rate(t int64) float64 {
	lr := o.s.lr
	frac := float64(t) / float64(max(o.total, 1))
	switch o.s.schedule {
	case ScheduleCosine:
		return lr * 0.5 * (1 + math.Cos(math.Pi*frac))
	case ScheduleStep:
		return lr * math.Pow(0.1, math.Floor(math.Min(frac, 0.999)*3))
	}
	return lr
}

// step applies one update with the gradient grads[i] of params[i] (nil
// for params without a gradient).
func (o *optimizer) step(params []*param, grads [][]float32) {
	lr := o.rate(o.t)
	o.t++
	for i, p := range params {
		g := grads[i]
		if g == nil {
			continue
		}
		if o.s.decay > 0 {
			d := float32(o.s.decay)
			for j, w := range p.data {
				g[j] += d * w
			}
		}
		for j, z := range p.mask {
			if z {
				g[j] = 0
			}
		}
		if o.v != nil {
			o.adam(p.data, g, o.m[i], o.v[i], lr)
		} else {
			o.sgd(p.data, g, o.m[i], lr)
		}
		for j, z := range p.mask {
			if z {
				p.data[j] = 0
			}
		}
	}
}

func (o *optimizer) adam(w, g, m, v []float32, lr float64) {
	b1c := 1 - math.Pow(adamBeta1, float64(o.t))
	b2c := 1 - math.Pow(adamBeta2, float64(o.t))
	step := float32(lr / b1c)
	s2 := float32(1 / math.Sqrt(b2c))
	for j, gj := range g {
		m[j] = adamBeta1*m[j] + (1-adamBeta1)*gj
		v[j] = adamBeta2*v[j] + (1-adamBeta2)*gj*gj
		w[j] -= step * m[j] / (float32(math.Sqrt(float64(v[j])))*s2 + adamEps)
	}
}

// sgd is SGD with (PyTorch-style) momentum: m = μ·m + g; w −= lr·m.
func (o *optimizer) sgd(w, g, m []float32, lr float64) {
	mu := float32(o.s.momentum)
	l := float32(lr)
	for j, gj := range g {
		m[j] = mu*m[j] + gj
		w[j] -= l * m[j]
	}
}
