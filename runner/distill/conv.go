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

// implicitConv computes a stride-1 convolution without copying patches:
// the input planes are padded once, and the patch row of weight position
// (channel, i, j) is then a view of the padded input starting at
// channel·plane + i·dilH·wp + j·dilW, read over oh rows of the padded
// width wp (the wp−ow extra columns compute values that are dropped).
type implicitConv struct {
	c      convGeom
	hp, wp int
	plane  int
	size   int   // padded input of one group, with the tail the last view reads
	np     int   // output positions at the padded width: oh·wp, rounded up to 16
	off    []int // view offsets, one per weight position
}

func newImplicitConv(c convGeom) *implicitConv {
	ic := &implicitConv{c: c, hp: c.h + c.padT + c.padB, wp: c.w + c.padL + c.padR}
	ic.plane = ic.hp * ic.wp
	// Rounding the row length up to the product kernel's block of 16
	// spares it a remainder; the views then read that much further.
	ic.np = (c.oh*ic.wp + 15) &^ 15
	ic.size = c.cg()*ic.plane + c.dilW*(c.kw-1) + ic.np - c.oh*ic.wp
	for ch := 0; ch < c.cg(); ch++ {
		for i := 0; i < c.kh; i++ {
			for j := 0; j < c.kw; j++ {
				ic.off = append(ic.off, ch*ic.plane+i*c.dilH*ic.wp+j*c.dilW)
			}
		}
	}
	return ic
}

// padPlanes copies the cg input planes x into the padded planes xp.
func padPlanes[T float](ic *implicitConv, x, xp []T) {
	c := &ic.c
	clear(xp[:ic.size])
	for ch := 0; ch < c.cg(); ch++ {
		for h := 0; h < c.h; h++ {
			copy(xp[ch*ic.plane+(h+c.padT)*ic.wp+c.padL:][:c.w], x[(ch*c.h+h)*c.w:][:c.w])
		}
	}
}

// padOutput lays m planes of oh×ow values out at the padded width, the
// extra columns zero.
func padOutput[T float](ic *implicitConv, m int, y, yp []T) {
	c := &ic.c
	for co := 0; co < m; co++ {
		for oh := 0; oh < c.oh; oh++ {
			row := yp[co*ic.np+oh*ic.wp:][:ic.wp]
			copy(row, y[(co*c.oh+oh)*c.ow:][:c.ow])
			clear(row[c.ow:])
		}
		clear(yp[co*ic.np+c.oh*ic.wp : (co+1)*ic.np])
	}
}

// cropOutput drops the extra columns of m padded-width planes.
func cropOutput[T float](ic *implicitConv, m int, yp, y []T) {
	c := &ic.c
	for co := 0; co < m; co++ {
		for oh := 0; oh < c.oh; oh++ {
			copy(y[(co*c.oh+oh)*c.ow:][:c.ow], yp[co*ic.np+oh*ic.wp:][:c.ow])
		}
	}
}

// convState is shared by a convolution's forward and backward kernels:
// the forward pass keeps, for every sample and group, what the weight
// gradient reads again (the padded input, or the patch columns of a
// strided convolution); the tape runs the backward after the forward of
// the same step.
type convState struct {
	geom convGeom
	// skip marks the weight entries whose gradient is never used (pruned
	// weights); nil when all are.
	skip []bool
	// fwd is set for stride-1 convolutions; back for those whose input
	// gradient is a stride-1 convolution of dY with the flipped filters.
	fwd, back *implicitConv
	saved     scratch
	work      scratch
}

func newConvState(c convGeom, skip []bool) *convState {
	st := &convState{geom: c, skip: skip}
	if c.strideH == 1 && c.stride == 1 {
		st.fwd = newImplicitConv(c)
		// dX[ci, ih, iw] = Σ W[co, ci, i, j]·dY[co, ih+padT−i·dilH, iw+padL−j·dilW]:
		// a convolution of dY padded by dil·(k−1)−pad with the flipped
		// filters, when those pads are not negative.
		b := convGeom{n: 1, cin: c.mg(), h: c.oh, w: c.ow, cout: c.cg(), kh: c.kh, kw: c.kw, group: 1,
			padT: c.dilH*(c.kh-1) - c.padT, padL: c.dilW*(c.kw-1) - c.padL,
			padB: c.dilH*(c.kh-1) - c.padB, padR: c.dilW*(c.kw-1) - c.padR,
			strideH: 1, stride: 1, dilH: c.dilH, dilW: c.dilW}
		if b.padT >= 0 && b.padL >= 0 && b.padB >= 0 && b.padR >= 0 && b.finish() == nil && b.oh == c.h && b.ow == c.w {
			st.back = newImplicitConv(b)
		}
	}
	return st
}

// savedOf returns what the forward pass kept for sample n, group g.
func savedOf[T float](st *convState, n, g int) []T {
	size := st.geom.k() * st.geom.p()
	if st.fwd != nil {
		size = st.fwd.size
	}
	all := buf[T](&st.saved, 0, st.geom.n*st.geom.group*size)
	return all[(n*st.geom.group+g)*size:][:size]
}

// convForward computes y = conv(x, w) + b (b may be nil).
func convForward[T float](st *convState, x, w, b, y []T) {
	c := &st.geom
	inG, outG, wG := c.cg()*c.h*c.w, c.mg()*c.p(), c.mg()*c.k()
	for n := 0; n < c.n; n++ {
		for g := 0; g < c.group; g++ {
			xg, yg, wg := x[(n*c.group+g)*inG:], y[(n*c.group+g)*outG:], w[g*wG:]
			saved := savedOf[T](st, n, g)
			if ic := st.fwd; ic != nil {
				padPlanes(ic, xg, saved)
				yp := buf[T](&st.work, 0, c.mg()*ic.np)
				gemmNN(c.mg(), ic.np, c.k(), wg, saved, rows{off: ic.off}, yp, false)
				cropOutput(ic, c.mg(), yp, yg)
				continue
			}
			im2cols(c, xg, saved)
			gemmNN(c.mg(), c.p(), c.k(), wg, saved, rows{ld: c.p()}, yg, false)
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

// convGradW computes dW = Σ_samples dY·patchesᵀ from what the forward
// pass kept.
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
			dyg, saved := dy[(n*c.group+g)*outG:], savedOf[T](st, n, g)
			if ic := st.fwd; ic != nil {
				dyp := buf[T](&st.work, 1, c.mg()*ic.np)
				padOutput(ic, c.mg(), dyg, dyp)
				gemmNT(c.mg(), c.k(), ic.np, dyp, saved, rows{off: ic.off}, dw[g*wG:], true, skip)
				continue
			}
			gemmNT(c.mg(), c.k(), c.p(), dyg, saved, rows{ld: c.p()}, dw[g*wG:], true, skip)
		}
	}
}

// convGradX computes dX: for stride-1 convolutions as the convolution of
// dY with the flipped, transposed filters (the forward machinery again);
// otherwise the patch gradients Wᵀ·dY are added back into place.
func convGradX[T float](st *convState, w, dy, dx []T) {
	c := &st.geom
	mg, cg, kk, p := c.mg(), c.cg(), c.k(), c.p()
	inG, outG := cg*c.h*c.w, mg*p
	if ic := st.back; ic != nil {
		// W'[ci, co, i, j] = W[co, ci, kh−1−i, kw−1−j]
		khw := c.kh * c.kw
		wf := buf[T](&st.work, 2, cg*mg*khw)
		dyp := buf[T](&st.work, 3, ic.size)
		dxp := buf[T](&st.work, 4, cg*ic.np)
		for g := 0; g < c.group; g++ {
			wg := w[g*mg*kk:]
			for co := 0; co < mg; co++ {
				for ci := 0; ci < cg; ci++ {
					src := wg[(co*cg+ci)*khw:][:khw]
					dst := wf[(ci*mg+co)*khw:][:khw]
					for i := range src {
						dst[khw-1-i] = src[i]
					}
				}
			}
			for n := 0; n < c.n; n++ {
				padPlanes(ic, dy[(n*c.group+g)*outG:], dyp)
				gemmNN(cg, ic.np, mg*khw, wf, dyp, rows{off: ic.off}, dxp, false)
				cropOutput(ic, cg, dxp, dx[(n*c.group+g)*inG:])
			}
		}
		return
	}
	wt := buf[T](&st.work, 0, kk*mg)
	dcols := buf[T](&st.work, 1, kk*p)
	clear(dx)
	for g := 0; g < c.group; g++ {
		transpose(mg, kk, w[g*mg*kk:], wt)
		for n := 0; n < c.n; n++ {
			gemmNN(kk, p, mg, wt, dy[(n*c.group+g)*outG:], rows{ld: p}, dcols, false)
			cols2im(c, dcols, dx[(n*c.group+g)*inG:])
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
	st := newConvState(c, skip)
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
