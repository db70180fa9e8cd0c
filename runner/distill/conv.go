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

// im2cols writes the patches of one group of one sample as columns:
// cols [k, p], one row per weight position, one column per output
// position.
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
					if c.stride == 1 {
						// Zeros where the row runs into the pads, a copy
						// in between.
						lo, hi := min(max(0, -iw), c.ow), max(0, min(c.ow, c.w-iw))
						clear(out[:lo])
						if hi > lo {
							copy(out[lo:hi], line[iw+lo:])
						}
						clear(out[max(lo, hi):])
						continue
					}
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

// cols2im adds column gradients [k, p] back into one group of one
// sample.
func cols2im[T float](c *convGeom, cols []T, dx []T) {
	p := c.p()
	for ch := 0; ch < c.cg(); ch++ {
		plane := dx[ch*c.h*c.w:]
		for i := 0; i < c.kh; i++ {
			for j := 0; j < c.kw; j++ {
				col := cols[((ch*c.kh+i)*c.kw+j)*p:][:p]
				for oh := 0; oh < c.oh; oh++ {
					ih := oh*c.strideH - c.padT + i*c.dilH
					if ih < 0 || ih >= c.h {
						continue
					}
					line := plane[ih*c.w:][:c.w]
					in := col[oh*c.ow:][:c.ow]
					iw := j*c.dilW - c.padL
					if c.stride == 1 {
						lo, hi := min(max(0, -iw), c.ow), max(0, min(c.ow, c.w-iw))
						if hi > lo {
							// Rows are short (the output width): a
							// plain loop beats a kernel call.
							dst := line[iw+lo : iw+hi]
							for i, v := range in[lo:hi] {
								dst[i] += v
							}
						}
						continue
					}
					for _, v := range in {
						if iw >= 0 && iw < c.w {
							line[iw] += v
						}
						iw += c.stride
					}
				}
			}
		}
	}
}

// convState is shared by a convolution's forward and backward kernels:
// the forward pass keeps the patch columns of every sample, which the
// weight gradient needs again (the tape runs the backward after the
// forward of the same step).
type convState struct {
	geom convGeom
	// skip marks the weight entries whose gradient is never used (pruned
	// weights); nil when all are.
	skip []bool
	cols scratch
	work scratch
}

// colsOf returns the patch columns of sample n, group g.
func colsOf[T float](st *convState, n, g int) []T {
	size := st.geom.k() * st.geom.p()
	all := buf[T](&st.cols, 0, st.geom.n*st.geom.group*size)
	return all[(n*st.geom.group+g)*size:][:size]
}

// convForward computes y = conv(x, w) + b (b may be nil) and keeps the
// columns.
func convForward[T float](st *convState, x, w, b, y []T) {
	c := &st.geom
	inG, outG, wG := c.cg()*c.h*c.w, c.mg()*c.p(), c.mg()*c.k()
	for n := 0; n < c.n; n++ {
		for g := 0; g < c.group; g++ {
			cols := colsOf[T](st, n, g)
			im2cols(c, x[(n*c.group+g)*inG:], cols)
			gemmNN(c.mg(), c.p(), c.k(), w[g*wG:], cols, y[(n*c.group+g)*outG:], false)
		}
		if b != nil {
			out := y[n*c.cout*c.p():]
			for co := 0; co < c.cout; co++ {
				v := b[co]
				row := out[co*c.p() : (co+1)*c.p()]
				for i := range row {
					row[i] += v
				}
			}
		}
	}
}

// convGradW computes dW = Σ_samples dY·colsᵀ from the kept columns.
func convGradW[T float](st *convState, dy, dw []T) {
	c := &st.geom
	outG, wG := c.mg()*c.p(), c.mg()*c.k()
	clear(dw)
	for n := 0; n < c.n; n++ {
		for g := 0; g < c.group; g++ {
			var skip []bool
			if st.skip != nil {
				skip = st.skip[g*wG:][:wG]
			}
			gemmNT(c.mg(), c.k(), c.p(), dy[(n*c.group+g)*outG:], colsOf[T](st, n, g), dw[g*wG:], true, skip)
		}
	}
}

// convGradX computes dX. With stride and dilation 1 (most layers) it is
// the convolution of dY with the flipped, transposed filters, which runs
// on the same column and product kernels as the forward pass; otherwise
// the column gradients Wᵀ·dY are added back into place.
func convGradX[T float](st *convState, w, dy, dx []T) {
	c := &st.geom
	if c.strideH == 1 && c.stride == 1 && c.dilH == 1 && c.dilW == 1 &&
		c.padT < c.kh && c.padB < c.kh && c.padL < c.kw && c.padR < c.kw {
		convGradXFlipped(st, w, dy, dx)
		return
	}
	mg, kk, p := c.mg(), c.k(), c.p()
	wt := buf[T](&st.work, 0, kk*mg)
	dcols := buf[T](&st.work, 1, kk*p)
	inG, outG := c.cg()*c.h*c.w, mg*p
	clear(dx)
	for g := 0; g < c.group; g++ {
		transpose(mg, kk, w[g*mg*kk:], wt)
		for n := 0; n < c.n; n++ {
			gemmNN(kk, p, mg, wt, dy[(n*c.group+g)*outG:], dcols, false)
			cols2im(c, dcols, dx[(n*c.group+g)*inG:])
		}
	}
}

// convGradXFlipped computes dX of a stride-1, dilation-1 convolution as
// dX = conv(dY, W'), W'[ci, co, i, j] = W[co, ci, kh−1−i, kw−1−j], with
// the pads mirrored (kh−1−pad).
func convGradXFlipped[T float](st *convState, w, dy, dx []T) {
	c := &st.geom
	mg, cg, kh, kw := c.mg(), c.cg(), c.kh, c.kw
	back := convGeom{n: 1, cin: mg, h: c.oh, w: c.ow, cout: cg, kh: kh, kw: kw, group: 1,
		padT: kh - 1 - c.padT, padL: kw - 1 - c.padL, padB: kh - 1 - c.padB, padR: kw - 1 - c.padR,
		strideH: 1, stride: 1, dilH: 1, dilW: 1, oh: c.h, ow: c.w}
	kk := back.k()
	wf := buf[T](&st.work, 2, cg*kk)
	cols := buf[T](&st.work, 3, kk*back.p())
	inG, outG := cg*c.h*c.w, mg*c.p()
	for g := 0; g < c.group; g++ {
		wg := w[g*mg*cg*kh*kw:]
		for co := 0; co < mg; co++ {
			for ci := 0; ci < cg; ci++ {
				src := wg[(co*cg+ci)*kh*kw:][:kh*kw]
				dst := wf[ci*kk+co*kh*kw:][:kh*kw]
				for i := range src {
					dst[len(src)-1-i] = src[i]
				}
			}
		}
		for n := 0; n < c.n; n++ {
			im2cols(&back, dy[(n*c.group+g)*outG:], cols)
			gemmNN(cg, back.p(), kk, wf, cols, dx[(n*c.group+g)*inG:], false)
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
func conv(c convGeom, skip []bool, x, w, b *G.Node, need []bool) (*G.Node, error) {
	st := &convState{geom: c, skip: skip}
	k := &kernel{name: "Conv", need: need}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convForward(st, data[float32](in[0]), data[float32](in[1]), optData[float32](in, 2), data[float32](out))
			return nil
		}, func() error {
			convForward(st, data[float64](in[0]), data[float64](in[1]), optData[float64](in, 2), data[float64](out))
			return nil
		})
	}
	k.grad = func(in G.Nodes, _, dy *G.Node, need []bool) (G.Nodes, error) {
		grads := make(G.Nodes, len(in))
		var err error
		if need[0] {
			if grads[0], err = convBackX(st, in[1], dy); err != nil {
				return nil, err
			}
		}
		if need[1] {
			if grads[1], err = convBackW(st, dy); err != nil {
				return nil, err
			}
		}
		if len(in) > 2 && need[2] {
			if grads[2], err = channelSum(c.n, c.cout, c.p(), dy); err != nil {
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

func convBackX(st *convState, w, dy *G.Node) (*G.Node, error) {
	c := &st.geom
	k := &kernel{name: "ConvGradX", need: []bool{false, false}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convGradX(st, data[float32](in[0]), data[float32](in[1]), data[float32](out))
			return nil
		}, func() error {
			convGradX(st, data[float64](in[0]), data[float64](in[1]), data[float64](out))
			return nil
		})
	}
	return apply(k, tensor.Shape{c.n, c.cin, c.h, c.w}, w, dy)
}

// convBackW reads the columns the forward kernel of the same node kept.
func convBackW(st *convState, dy *G.Node) (*G.Node, error) {
	c := &st.geom
	k := &kernel{name: "ConvGradW", need: []bool{false}}
	k.fwd = func(in []*tensor.Dense, out *tensor.Dense) error {
		return dispatch(in[0], func() error {
			convGradW(st, data[float32](in[0]), data[float32](out))
			return nil
		}, func() error {
			convGradW(st, data[float64](in[0]), data[float64](out))
			return nil
		})
	}
	return apply(k, tensor.Shape{c.cout, c.cg(), c.kh, c.kw}, dy)
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
