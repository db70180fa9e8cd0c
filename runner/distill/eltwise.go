package distill

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// binKind is an elementwise binary operator.
type binKind int

const (
	binAdd binKind = iota
	binSub
	binMul
	binDiv
)

var binNames = [...]string{"Add", "Sub", "Mul", "Div"}

// bcast is the ONNX (NumPy) broadcast of two shapes, with adjacent
// dimensions merged where neither operand changes how it is read, so
// that the innermost loop runs as long as possible.
type bcast struct {
	out    []int // merged output dims
	sa, sb []int // element strides of a and b along out (0 where broadcast)
	size   int
	full   tensor.Shape // the output shape before merging
}

// broadcastShapes returns the output shape of a and b, or an error when
// they do not broadcast.
func broadcastShapes(a, b []int) ([]int, error) {
	n := max(len(a), len(b))
	out := make([]int, n)
	for i := 0; i < n; i++ {
		da, db := dimFromEnd(a, n-1-i), dimFromEnd(b, n-1-i)
		switch {
		case da == db || db == 1:
			out[i] = da
		case da == 1:
			out[i] = db
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
}

func dimFromEnd(s []int, i int) int {
	if j := len(s) - 1 - i; j >= 0 {
		return s[j]
	}
	return 1
}

func newBcast(a, b []int) (*bcast, error) {
	out, err := broadcastShapes(a, b)
	if err != nil {
		return nil, err
	}
	n := len(out)
	sa, sb := stridesIn(a, out), stridesIn(b, out)
	bc := &bcast{full: tensor.Shape(out).Clone(), size: 1}
	for i := 0; i < n; i++ {
		bc.size *= out[i]
		if k := len(bc.out) - 1; k >= 0 && sa[k] == sa[i]*out[i] && sb[k] == sb[i]*out[i] {
			bc.out[k] *= out[i]
			bc.sa[k], bc.sb[k] = sa[i], sb[i]
			continue
		}
		bc.out = append(bc.out, out[i])
		bc.sa = append(bc.sa, sa[i])
		bc.sb = append(bc.sb, sb[i])
	}
	if len(bc.out) == 0 {
		bc.out, bc.sa, bc.sb = []int{1}, []int{0}, []int{0}
	}
	return bc, nil
}

// stridesIn returns the strides of a tensor of shape s read along the
// broadcast shape out: 0 along dimensions s lacks or holds once.
func stridesIn(s, out []int) []int {
	st := make([]int, len(out))
	acc := 1
	for i := len(out) - 1; i >= 0; i-- {
		d := dimFromEnd(s, len(out)-1-i)
		if d != 1 {
			st[i] = acc
		}
		acc *= d
	}
	return st
}

// rows calls f for each innermost row of the output: its offset o in the
// output, the offsets of a and b, and the row length.
func (bc *bcast) rows(f func(o, ia, ib, n int)) {
	last := len(bc.out) - 1
	n := bc.out[last]
	idx := make([]int, last)
	ia, ib := 0, 0
	for o := 0; o < bc.size; o += n {
		f(o, ia, ib, n)
		for d := last - 1; d >= 0; d-- {
			idx[d]++
			ia += bc.sa[d]
			ib += bc.sb[d]
			if idx[d] < bc.out[d] {
				break
			}
			ia -= bc.sa[d] * bc.out[d]
			ib -= bc.sb[d] * bc.out[d]
			idx[d] = 0
		}
	}
}

func binForward[T float](bc *bcast, kind binKind, a, b, y []T) {
	last := len(bc.out) - 1
	sa, sb := bc.sa[last], bc.sb[last]
	bc.rows(func(o, ia, ib, n int) {
		out := y[o : o+n]
		// One loop per operator keeps the branch out of the inner loop.
		switch kind {
		case binAdd:
			for i := range out {
				out[i] = a[ia+i*sa] + b[ib+i*sb]
			}
		case binSub:
			for i := range out {
				out[i] = a[ia+i*sa] - b[ib+i*sb]
			}
		case binMul:
			for i := range out {
				out[i] = a[ia+i*sa] * b[ib+i*sb]
			}
		case binDiv:
			for i := range out {
				out[i] = a[ia+i*sa] / b[ib+i*sb]
			}
		}
	})
}

// binBackward accumulates the gradient of operand side (0 for a, 1 for b)
// into g, summing over the dimensions that operand was broadcast along.
// tmp holds one output row.
func binBackward[T float](bc *bcast, kind binKind, side int, a, b, dy, g, tmp []T) {
	clear(g)
	last := len(bc.out) - 1
	sa, sb := bc.sa[last], bc.sb[last]
	bc.rows(func(o, ia, ib, n int) {
		d, t := dy[o:o+n], tmp[:n]
		// t = ∂out/∂operand · dy along the row, one loop per case.
		switch {
		case kind == binAdd && (side == 0 && sa == 0 || side == 1 && sb == 0):
			// A bias's gradient: the row's sum, without a copy.
			if side == 0 {
				g[ia] += sum(d)
			} else {
				g[ib] += sum(d)
			}
			return
		case kind == binAdd, kind == binSub && side == 0:
			copy(t, d)
		case kind == binSub:
			for i, v := range d {
				t[i] = -v
			}
		case kind == binMul && side == 0:
			for i, v := range d {
				t[i] = v * b[ib+i*sb]
			}
		case kind == binMul:
			for i, v := range d {
				t[i] = v * a[ia+i*sa]
			}
		case kind == binDiv && side == 0:
			for i, v := range d {
				t[i] = v / b[ib+i*sb]
			}
		default:
			for i, v := range d {
				z := b[ib+i*sb]
				t[i] = -v * a[ia+i*sa] / (z * z)
			}
		}
		off, st := ia, sa
		if side == 1 {
			off, st = ib, sb
		}
		if st == 0 {
			g[off] += sum(t)
			return
		}
		for i, v := range t {
			g[off+i*st] += v
		}
	})
}

// binary adds an elementwise node with ONNX broadcasting.
func binary(kind binKind, a, b *G.Node, need []bool) (*G.Node, error) {
	sa, sb := a.Shape(), b.Shape()
	bc, err := newBcast(sa, sb)
	if err != nil {
		return nil, err
	}
	k := &kernel{name: binNames[kind], need: need}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			binForward(bc, kind, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			binForward(bc, kind, data[float64](in[0]), data[float64](in[1]), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, _, dy *G.Node, need []bool) (G.Nodes, error) {
		grads := make(G.Nodes, 2)
		for side, shape := range []tensor.Shape{sa, sb} {
			if !need[side] {
				continue
			}
			b := &kernel{name: binNames[kind] + "Grad", need: []bool{false, false, false}}
			var tmp scratch
			row := bc.out[len(bc.out)-1]
			b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
				return dispatch(in[0], func() error {
					binBackward(bc, kind, side, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](out), buf[float32](&tmp, 0, row))
					return nil
				}, func() error {
					binBackward(bc, kind, side, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](out), buf[float64](&tmp, 0, row))
					return nil
				})
			}
			g, err := apply(b, shape, in[0], in[1], dy)
			if err != nil {
				return nil, err
			}
			grads[side] = g
		}
		return grads, nil
	}
	return apply(k, bc.full, a, b)
}

// sum adds up x with independent partial sums (a single running sum
// waits on each addition's latency).
func sum[T float](x []T) T {
	var s0, s1, s2, s3, s4, s5, s6, s7 T
	i := 0
	for ; i+8 <= len(x); i += 8 {
		s0 += x[i]
		s1 += x[i+1]
		s2 += x[i+2]
		s3 += x[i+3]
		s4 += x[i+4]
		s5 += x[i+5]
		s6 += x[i+6]
		s7 += x[i+7]
	}
	for ; i < len(x); i++ {
		s0 += x[i]
	}
	return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
}
