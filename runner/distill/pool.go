package distill

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// poolGeom is a 2-D pooling window: ONNX MaxPool/AveragePool attributes
// with the input shape.
type poolGeom struct {
	n, c, h, w       int
	kh, kw           int
	padT, padL       int
	padB, padR       int
	strideH, strideW int
	dilH, dilW       int
	ceil             bool
	// includePad divides averages by the full window, pads included
	// (AveragePool count_include_pad=1).
	includePad bool
	oh, ow     int
}

func (g *poolGeom) finish() error {
	if g.kh <= 0 || g.kw <= 0 || g.strideH <= 0 || g.strideW <= 0 || g.dilH <= 0 || g.dilW <= 0 {
		return fmt.Errorf("kernel, strides and dilations must be positive")
	}
	if g.padT < 0 || g.padL < 0 || g.padB < 0 || g.padR < 0 {
		return fmt.Errorf("pads must not be negative")
	}
	g.oh = outSize(g.h, g.kh, g.padT, g.padB, g.strideH, g.dilH, g.ceil)
	g.ow = outSize(g.w, g.kw, g.padL, g.padR, g.strideW, g.dilW, g.ceil)
	if g.oh <= 0 || g.ow <= 0 {
		return fmt.Errorf("window %dx%d does not fit the %dx%d input with its pads", g.kh, g.kw, g.h, g.w)
	}
	return nil
}

// outSize is the pooled length of one axis. With ceil_mode the last
// window may run past the end, but must start inside the input or its
// leading pad (the rule ONNX Runtime and PyTorch share).
func outSize(in, k, padA, padB, stride, dil int, ceil bool) int {
	span := in + padA + padB - dil*(k-1) - 1
	if span < 0 {
		return 0
	}
	if !ceil {
		return span/stride + 1
	}
	out := (span+stride-1)/stride + 1
	if (out-1)*stride >= in+padA {
		out--
	}
	return out
}

// span is the clipped range of input positions [lo, hi) one output
// position's window covers along one axis (stepping by the dilation).
type span struct{ lo, hi int }

// spans returns the window range of every output position along an axis.
func spans(out, in, k, pad, stride, dil int) []span {
	s := make([]span, out)
	for o := range s {
		lo := o*stride - pad
		hi := min(lo+(k-1)*dil+1, in)
		for lo < 0 {
			lo += dil
		}
		s[o] = span{lo, max(lo, hi)}
	}
	return s
}

// maxPoolForward computes the maximum of each window (0 for windows that
// hold only padding). Taking the maximum without tracking where it came
// from keeps the loop free of unpredictable branches; the backward pass
// finds the position again.
func maxPoolForward[T float](g *poolGeom, hs, ws []span, x, y []T) {
	for pl := 0; pl < g.n*g.c; pl++ {
		in := x[pl*g.h*g.w:][:g.h*g.w]
		out := y[pl*g.oh*g.ow:][:g.oh*g.ow]
		for oh, hsp := range hs {
			for ow, wsp := range ws {
				best := T(math.Inf(-1))
				for ih := hsp.lo; ih < hsp.hi; ih += g.dilH {
					row := in[ih*g.w:]
					for iw := wsp.lo; iw < wsp.hi; iw += g.dilW {
						best = max(best, row[iw])
					}
				}
				if math.IsInf(float64(best), -1) && (hsp.lo >= hsp.hi || wsp.lo >= wsp.hi) {
					best = 0
				}
				out[oh*g.ow+ow] = best
			}
		}
	}
}

// maxPoolBackward sends each output's gradient to the first position of
// its window that holds the maximum (the one a strict comparison keeps).
func maxPoolBackward[T float](g *poolGeom, hs, ws []span, x, y, dy, dx []T) {
	clear(dx)
	for pl := 0; pl < g.n*g.c; pl++ {
		in := x[pl*g.h*g.w:][:g.h*g.w]
		d := dx[pl*g.h*g.w:][:g.h*g.w]
		out := y[pl*g.oh*g.ow:][:g.oh*g.ow]
		grad := dy[pl*g.oh*g.ow:][:g.oh*g.ow]
		for oh, hsp := range hs {
			for ow, wsp := range ws {
				if at := argFirst(g, hsp, wsp, in, out[oh*g.ow+ow]); at >= 0 {
					d[at] += grad[oh*g.ow+ow]
				}
			}
		}
	}
}

// argFirst returns the first position of the window holding v, or -1.
func argFirst[T float](g *poolGeom, hsp, wsp span, in []T, v T) int {
	for ih := hsp.lo; ih < hsp.hi; ih += g.dilH {
		for iw := wsp.lo; iw < wsp.hi; iw += g.dilW {
			if in[ih*g.w+iw] == v {
				return ih*g.w + iw
			}
		}
	}
	return -1
}

// window returns the clipped window of output (oh, ow) and the divisor
// of its average.
func (g *poolGeom) window(oh, ow int) (h0, h1, w0, w1, count int) {
	h0, w0 = oh*g.strideH-g.padT, ow*g.strideW-g.padL
	h1, w1 = h0+(g.kh-1)*g.dilH+1, w0+(g.kw-1)*g.dilW+1
	if g.includePad {
		// The window counts its padded part but not what runs past
		// the pads in ceil mode.
		count = ((min(h1, g.h+g.padB) - h0 + g.dilH - 1) / g.dilH) * ((min(w1, g.w+g.padR) - w0 + g.dilW - 1) / g.dilW)
	}
	for h0 < 0 {
		h0 += g.dilH
	}
	for w0 < 0 {
		w0 += g.dilW
	}
	h1, w1 = min(h1, g.h), min(w1, g.w)
	if !g.includePad {
		count = max(0, (h1-h0+g.dilH-1)/g.dilH) * max(0, (w1-w0+g.dilW-1)/g.dilW)
	}
	return h0, h1, w0, w1, count
}

func avgPoolForward[T float](g *poolGeom, x, y []T) {
	for pl := 0; pl < g.n*g.c; pl++ {
		in := x[pl*g.h*g.w:][:g.h*g.w]
		out := y[pl*g.oh*g.ow:][:g.oh*g.ow]
		for oh := 0; oh < g.oh; oh++ {
			for ow := 0; ow < g.ow; ow++ {
				h0, h1, w0, w1, count := g.window(oh, ow)
				var s T
				for ih := h0; ih < h1; ih += g.dilH {
					for iw := w0; iw < w1; iw += g.dilW {
						s += in[ih*g.w+iw]
					}
				}
				if count > 0 {
					s /= T(count)
				}
				out[oh*g.ow+ow] = s
			}
		}
	}
}

func avgPoolBackward[T float](g *poolGeom, dy, dx []T) {
	clear(dx)
	for pl := 0; pl < g.n*g.c; pl++ {
		d := dx[pl*g.h*g.w:][:g.h*g.w]
		grad := dy[pl*g.oh*g.ow:][:g.oh*g.ow]
		for oh := 0; oh < g.oh; oh++ {
			for ow := 0; ow < g.ow; ow++ {
				h0, h1, w0, w1, count := g.window(oh, ow)
				if count == 0 {
					continue
				}
				v := grad[oh*g.ow+ow] / T(count)
				for ih := h0; ih < h1; ih += g.dilH {
					for iw := w0; iw < w1; iw += g.dilW {
						d[ih*g.w+iw] += v
					}
				}
			}
		}
	}
}

// maxPool adds a max pooling node.
func maxPool(geom poolGeom, x *G.Node, need bool) (*G.Node, error) {
	g := geom
	hs := spans(g.oh, g.h, g.kh, g.padT, g.strideH, g.dilH)
	ws := spans(g.ow, g.w, g.kw, g.padL, g.strideW, g.dilW)
	k := &kernel{name: "MaxPool", need: []bool{need}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			maxPoolForward(&g, hs, ws, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			maxPoolForward(&g, hs, ws, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, y, dy *G.Node, _ []bool) (G.Nodes, error) {
		b := &kernel{name: "MaxPoolGrad", need: []bool{false, false, false}}
		b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
			return dispatch(in[0], func() error {
				maxPoolBackward(&g, hs, ws, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](out))
				return nil
			}, func() error {
				maxPoolBackward(&g, hs, ws, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](out))
				return nil
			})
		}
		dx, err := apply(b, tensor.Shape{g.n, g.c, g.h, g.w}, in[0], y, dy)
		return G.Nodes{dx}, err
	}
	return apply(k, tensor.Shape{g.n, g.c, g.oh, g.ow}, x)
}

// avgPool adds an average pooling node.
func avgPool(geom poolGeom, x *G.Node, need bool) (*G.Node, error) {
	g := geom
	k := &kernel{name: "AveragePool", need: []bool{need}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			avgPoolForward(&g, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			avgPoolForward(&g, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, _, dy *G.Node, _ []bool) (G.Nodes, error) {
		b := &kernel{name: "AveragePoolGrad", need: []bool{false}}
		b.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
			return dispatch(in[0], func() error {
				avgPoolBackward(&g, data[float32](in[0]), data[float32](out))
				return nil
			}, func() error {
				avgPoolBackward(&g, data[float64](in[0]), data[float64](out))
				return nil
			})
		}
		dx, err := apply(b, tensor.Shape{g.n, g.c, g.h, g.w}, dy)
		return G.Nodes{dx}, err
	}
	return apply(k, tensor.Shape{g.n, g.c, g.oh, g.ow}, x)
}
