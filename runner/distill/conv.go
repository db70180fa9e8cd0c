package distill

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convGeom is a 2-D convolution's geometry: ONNX Conv's attributes with
// the input and weight shapes they apply to.
type convGeom struct {
	n, cin, h, w    int // input [n, cin, h, w]
	cout, kh, kw    int // weight [cout, cin/group, kh, kw]
	group           int
	padT, padL      int
	padB, padR      int
	strideH, stride int
	dilH, dilW      int
	oh, ow          int
}

// cg is the number of input channels per group, mg the number of output
// channels per group, k the length of one patch (one row of the weight).
func (c *convGeom) cg() int { return c.cin / c.group }
func (c *convGeom) mg() int { return c.cout / c.group }
func (c *convGeom) k() int  { return c.cg() * c.kh * c.kw }
func (c *convGeom) p() int  { return c.oh * c.ow }

// finish computes the output size and checks the geometry.
func (c *convGeom) finish() error {
	if c.group <= 0 || c.cin%c.group != 0 || c.cout%c.group != 0 {
		return fmt.Errorf("group %d must divide the %d input and %d output channels", c.group, c.cin, c.cout)
	}
	if c.strideH <= 0 || c.stride <= 0 || c.dilH <= 0 || c.dilW <= 0 {
		return fmt.Errorf("strides and dilations must be positive")
	}
	if c.padT < 0 || c.padL < 0 || c.padB < 0 || c.padR < 0 {
		return fmt.Errorf("pads must not be negative")
	}
	c.oh = (c.h+c.padT+c.padB-(c.dilH*(c.kh-1)+1))/c.strideH + 1
	c.ow = (c.w+c.padL+c.padR-(c.dilW*(c.kw-1)+1))/c.stride + 1
	if c.oh <= 0 || c.ow <= 0 {
		return fmt.Errorf("kernel %dx%d does not fit the %dx%d input with its pads", c.kh, c.kw, c.h, c.w)
	}
	return nil
}

// im2rows writes the patches of one group of one sample as rows: rows
// [p, k], one row per output position (the layout the forward product
// and the input gradient need).
func im2rows[T float](c *convGeom, x []T, rows []T) {
	kk := c.k()
	for oh := 0; oh < c.oh; oh++ {
		for ow := 0; ow < c.ow; ow++ {
			row := rows[(oh*c.ow+ow)*kk:][:kk]
			ih0, iw0 := oh*c.strideH-c.padT, ow*c.stride-c.padL
			idx := 0
			for ch := 0; ch < c.cg(); ch++ {
				plane := x[ch*c.h*c.w:]
				for i := 0; i < c.kh; i++ {
					ih := ih0 + i*c.dilH
					if ih < 0 || ih >= c.h {
						clear(row[idx : idx+c.kw])
						idx += c.kw
						continue
					}
					line := plane[ih*c.w:][:c.w]
					for j := 0; j < c.kw; j++ {
						iw := iw0 + j*c.dilW
						if iw < 0 || iw >= c.w {
							row[idx] = 0
						} else {
							row[idx] = line[iw]
						}
						idx++
					}
				}
			}
		}
	}
}

// im2cols writes the patches of one group of one sample as columns:
// cols [k, p] (the layout the weight gradient needs).
func im2cols[T float](c *convGeom, x []T, cols []T) {
	p := c.p()
	for ch := 0; ch < c.cg(); ch++ {
		plane := x[ch*c.h*c.w:]
		for i := 0; i < c.kh; i++ {
			for j := 0; j < c.kw; j++ {
				col := cols[((ch*c.kh+i)*c.kw+j)*p:][:p]
				for oh := 0; oh < c.oh; oh++ {
					ih := oh*c.strideH - c.padT + i*c.dilH
					out := col[oh*c.ow:][:c.ow]
					if ih < 0 || ih >= c.h {
						clear(out)
						continue
					}
					line := plane[ih*c.w:][:c.w]
					iw := j*c.dilW - c.padL
					for ow := range out {
						if iw < 0 || iw >= c.w {
							out[ow] = 0
						} else {
							out[ow] = line[iw]
						}
						iw += c.stride
					}
				}
			}
		}
	}
}

// rows2im adds patch rows [p, k] back into one group of one sample.
func rows2im[T float](c *convGeom, rows []T, dx []T) {
	kk := c.k()
	for oh := 0; oh < c.oh; oh++ {
		for ow := 0; ow < c.ow; ow++ {
			row := rows[(oh*c.ow+ow)*kk:][:kk]
			ih0, iw0 := oh*c.strideH-c.padT, ow*c.stride-c.padL
			idx := 0
			for ch := 0; ch < c.cg(); ch++ {
				plane := dx[ch*c.h*c.w:]
				for i := 0; i < c.kh; i++ {
					ih := ih0 + i*c.dilH
					if ih < 0 || ih >= c.h {
						idx += c.kw
						continue
					}
					line := plane[ih*c.w:][:c.w]
					for j := 0; j < c.kw; j++ {
						if iw := iw0 + j*c.dilW; iw >= 0 && iw < c.w {
							line[iw] += row[idx]
						}
						idx++
					}
				}
			}
		}
	}
}

// convForward computes y = conv(x, w) + b (b may be nil).
func convForward[T float](c *convGeom, x, w, b, y []T) {
	rows := make([]T, c.p()*c.k())
	inG, outG := c.cg()*c.h*c.w, c.mg()*c.p()
	for n := 0; n < c.n; n++ {
		for g := 0; g < c.group; g++ {
			im2rows(c, x[(n*c.group+g)*inG:], rows)
			gemm(c.mg(), c.p(), c.k(), w[g*c.mg()*c.k():], rows, y[(n*c.group+g)*outG:], false)
		}
		if b != nil {
			out := y[n*c.cout*c.p():]
			for co := 0; co < c.cout; co++ {
				v := b[co]
				for i, o := range out[co*c.p() : (co+1)*c.p()] {
					out[co*c.p()+i] = o + v
				}
			}
		}
	}
}

// convGradW computes dW = Σ_samples dY·colsᵀ.
func convGradW[T float](c *convGeom, x, dy, dw []T) {
	cols := make([]T, c.k()*c.p())
	inG, outG := c.cg()*c.h*c.w, c.mg()*c.p()
	clear(dw)
	for n := 0; n < c.n; n++ {
		for g := 0; g < c.group; g++ {
			im2cols(c, x[(n*c.group+g)*inG:], cols)
			gemm(c.mg(), c.k(), c.p(), dy[(n*c.group+g)*outG:], cols, dw[g*c.mg()*c.k():], true)
		}
	}
}

// convGradX computes dX: the patch gradients dYᵀ·W added back into place.
func convGradX[T float](c *convGeom, w, dy, dx []T) {
	mg, kk, p := c.mg(), c.k(), c.p()
	wt := make([]T, kk*mg)
	dyt := make([]T, p*mg)
	rows := make([]T, p*kk)
	inG, outG := c.cg()*c.h*c.w, mg*p
	clear(dx)
	for g := 0; g < c.group; g++ {
		transpose(mg, kk, w[g*mg*kk:], wt)
		for n := 0; n < c.n; n++ {
			transpose(mg, p, dy[(n*c.group+g)*outG:], dyt)
			gemm(p, kk, mg, dyt, wt, rows, false)
			rows2im(c, rows, dx[(n*c.group+g)*inG:])
		}
	}
}

// sumChannels computes db[c] = Σ over samples and positions of dy[n, c, ...].
func sumChannels[T float](n, ch, p int, dy, db []T) {
	clear(db)
	for i := 0; i < n; i++ {
		for c := 0; c < ch; c++ {
			var s T
			for _, v := range dy[(i*ch+c)*p:][:p] {
				s += v
			}
			db[c] += s
		}
	}
}

// conv adds a convolution node: x [n, cin, h, w], w [cout, cin/group,
// kh, kw], b [cout] or nil.
func conv(c convGeom, x, w, b *G.Node, need []bool) (*G.Node, error) {
	geom := c
	k := &kernel{name: "Conv", need: need}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convForward(&geom, data[float32](in[0]), data[float32](in[1]), optData[float32](in, 2), data[float32](out))
			return nil
		}, func() error {
			convForward(&geom, data[float64](in[0]), data[float64](in[1]), optData[float64](in, 2), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, _, dy *G.Node, need []bool) (G.Nodes, error) {
		grads := make(G.Nodes, len(in))
		var err error
		if need[0] {
			if grads[0], err = convBackX(&geom, in[1], dy); err != nil {
				return nil, err
			}
		}
		if need[1] {
			if grads[1], err = convBackW(&geom, in[0], dy); err != nil {
				return nil, err
			}
		}
		if len(in) > 2 && need[2] {
			if grads[2], err = channelSum(geom.n, geom.cout, geom.p(), dy); err != nil {
				return nil, err
			}
		}
		return grads, nil
	}
	ins := []*G.Node{x, w}
	if b != nil {
		ins = append(ins, b)
	}
	return apply(k, tensor.Shape{c.n, c.cout, c.oh, c.ow}, ins...)
}

func optData[T float](in []*tensor.Dense, i int) []T {
	if i < len(in) {
		return data[T](in[i])
	}
	return nil
}

func convBackX(c *convGeom, w, dy *G.Node) (*G.Node, error) {
	k := &kernel{name: "ConvGradX", need: []bool{false, false}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convGradX(c, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			convGradX(c, data[float64](in[0]), data[float64](in[1]), data[float64](out))
			return nil
		})
	}
	return apply(k, tensor.Shape{c.n, c.cin, c.h, c.w}, w, dy)
}

func convBackW(c *convGeom, x, dy *G.Node) (*G.Node, error) {
	k := &kernel{name: "ConvGradW", need: []bool{false, false}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convGradW(c, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			convGradW(c, data[float64](in[0]), data[float64](in[1]), data[float64](out))
			return nil
		})
	}
	return apply(k, tensor.Shape{c.cout, c.cg(), c.kh, c.kw}, x, dy)
}

// channelSum adds a node summing dy [n, ch, p...] to [ch].
func channelSum(n, ch, p int, dy *G.Node) (*G.Node, error) {
	k := &kernel{name: "ChannelSum", need: []bool{false}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			sumChannels(n, ch, p, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			sumChannels(n, ch, p, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	return apply(k, tensor.Shape{ch}, dy)
}
