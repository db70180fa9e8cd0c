package distill

import (
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// unaryKind is an elementwise activation.
type unaryKind int

const (
	unRelu unaryKind = iota
	unLeakyRelu
	unSigmoid
	unTanh
	unHardSigmoid
	unClip
)

var unaryNames = [...]string{"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "Clip"}

// activation is an activation with its ONNX attributes (alpha for
// LeakyRelu and HardSigmoid, beta for HardSigmoid; for Clip the bounds
// alpha ≤ x ≤ beta).
type activation struct {
	kind        unaryKind
	alpha, beta float64
}

func unaryForward[T float](a activation, x, y []T) {
	alpha, beta := T(a.alpha), T(a.beta)
	switch a.kind {
	case unRelu:
		for i, v := range x {
			y[i] = max(v, 0)
		}
	case unLeakyRelu:
		for i, v := range x {
			if v < 0 {
				v *= alpha
			}
			y[i] = v
		}
	case unSigmoid:
		for i, v := range x {
			y[i] = T(1 / (1 + math.Exp(-float64(v))))
		}
	case unTanh:
		for i, v := range x {
			y[i] = T(math.Tanh(float64(v)))
		}
	case unHardSigmoid:
		for i, v := range x {
			y[i] = min(max(alpha*v+beta, 0), 1)
		}
	case unClip:
		for i, v := range x {
			y[i] = min(max(v, alpha), beta)
		}
	}
}

// unaryBackward computes dx from the input x, the output y and dy.
func unaryBackward[T float](a activation, x, y, dy, dx []T) {
	alpha, beta := T(a.alpha), T(a.beta)
	switch a.kind {
	case unRelu:
		// Half the inputs are negative at random: a branch here would
		// mispredict half the time.
		dy = dy[:len(x)]
		dx = dx[:len(x)]
		for i, v := range x {
			dx[i] = dy[i] * T(b2u(v > 0))
		}
	case unLeakyRelu:
		for i, v := range x {
			if v < 0 {
				dx[i] = alpha * dy[i]
			} else {
				dx[i] = dy[i]
			}
		}
	case unSigmoid:
		for i, v := range y {
			dx[i] = dy[i] * v * (1 - v)
		}
	case unTanh:
		for i, v := range y {
			dx[i] = dy[i] * (1 - v*v)
		}
	case unHardSigmoid:
		for i, v := range x {
			if z := alpha*v + beta; z > 0 && z < 1 {
				dx[i] = alpha * dy[i]
			} else {
				dx[i] = 0
			}
		}
	case unClip:
		dy = dy[:len(x)]
		dx = dx[:len(x)]
		for i, v := range x {
			dx[i] = dy[i] * T(b2u(v >= alpha && v <= beta))
		}
	}
}

// unary adds an activation node.
func unary(a activation, x *G.Node, need bool) (*G.Node, error) {
	k := &kernel{name: unaryNames[a.kind], need: []bool{need}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			unaryForward(a, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			unaryForward(a, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	shape := x.Shape()
	k.grad = func(in G.Nodes, y, dy *G.Node, _ []bool) (G.Nodes, error) {
		b := &kernel{name: unaryNames[a.kind] + "Grad", need: []bool{false, false, false}}
		b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
			return dispatch(in[0], func() error {
				unaryBackward(a, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](out))
				return nil
			}, func() error {
				unaryBackward(a, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](out))
				return nil
			})
		}
		dx, err := apply(b, shape, in[0], y, dy)
		return G.Nodes{dx}, err
	}
	return apply(k, shape, x)
}

// b2u converts a bool to 0 or 1; the compiler makes it a SETcc, not a
// branch.
func b2u(b bool) uint8 {
	var u uint8
	if b {
		u = 1
	}
	return u
}
