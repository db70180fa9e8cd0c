package prune

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// hessianAcc accumulates XᵀX for one weight, one matrix per convolution
// group, where the rows of X are the feature vectors the operator
// multiplies by the weight's rows: rows of a MatMul/Gemm input, im2col
// patches of a Conv input (columns in the layout's order: kernel position,
// then input channel), pixels of a ConvTranspose input.
//
// With bias, every row gets one more feature, a constant 1: the bias is
// the weight of that input, so H covers it too.
type hessianAcc struct {
	lay *layout
	// cols is the number of features: the layout's columns, plus one for
	// the bias.
	cols int
	h    [][]float64
	rows int64
	buf  []float64
	fill int
}

func newHessianAcc(l *layout, bias bool) *hessianAcc {
	a := &hessianAcc{lay: l, cols: l.cols, h: make([][]float64, l.groups)}
	if bias {
		a.cols++
	}
	for g := range a.h {
		a.h[g] = make([]float64, a.cols*a.cols)
	}
	// Rows are gathered in float64 and added with one rank-k update per
	// chunk of about 2 MB.
	a.buf = make([]float64, max(64, 1<<18/a.cols)*a.cols)
	return a
}

// row returns the layout's columns of the next row of the chunk to fill.
func (a *hessianAcc) row() []float64 {
	c := a.cols
	r := a.buf[a.fill*c : (a.fill+1)*c]
	if c > a.lay.cols {
		r[a.lay.cols] = 1
	}
	a.fill++
	return r[:a.lay.cols]
}

func (a *hessianAcc) full() bool { return (a.fill+1)*a.cols > len(a.buf) }

// flush adds the gathered rows to group g's XᵀX (upper triangle).
func (a *hessianAcc) flush(g int) {
	if a.fill == 0 {
		return
	}
	c := a.cols
	blas64.Syrk(blas.Trans, 1, blas64.General{Rows: a.fill, Cols: c, Stride: c, Data: a.buf[:a.fill*c]},
		1, blas64.Symmetric{Uplo: blas.Upper, N: c, Stride: c, Data: a.h[g]})
	a.rows += int64(a.fill)
	a.fill = 0
}

// merge adds b's XᵀX and rows to a's (both flushed).
func (a *hessianAcc) merge(b *hessianAcc) {
	for g, h := range a.h {
		for k, v := range b.h[g] {
			h[k] += v
		}
	}
	a.rows += b.rows
}

// hessians returns H = 2·XᵀX / rows per group, the scale SparseGPT uses
// (the mean over rows, so dampening is relative to the data).
func (a *hessianAcc) hessians() [][]float64 {
	if a.rows > 0 {
		s := 2 / float64(a.rows)
		for _, h := range a.h {
			for i := range h {
				h[i] *= s
			}
		}
	}
	return a.h
}

// add adds the data input (the operator table's) a node read on one
// calibration batch.
func (a *hessianAcc) add(node *onnxpb.NodeProto, x *onnx.Tensor) error {
	vals, err := x.Float32s()
	if err != nil {
		return err
	}
	l, _ := onnx.LayerOf(node)
	switch l.Kind {
	case onnx.LayerMatMul:
		return a.addRows(x.Dims, vals, false)
	case onnx.LayerGemm:
		return a.addRows(x.Dims, vals, l.TransA)
	case onnx.LayerConv:
		return a.addPatches(node, x.Dims, vals)
	case onnx.LayerConvTranspose:
		return a.addPixels(x.Dims, vals)
	}
	return fmt.Errorf("no features for operator %s", node.GetOpType())
}

// addRows adds a matrix product's left input: [..., K] (or [K, M] with
// transA, whose columns are the rows).
func (a *hessianAcc) addRows(dims []int64, vals []float32, trans bool) error {
	k := a.lay.cols
	if len(dims) == 0 || (trans && len(dims) != 2) {
		return fmt.Errorf("input has shape %v, expected [..., %d]", dims, k)
	}
	if trans {
		if int(dims[0]) != k {
			return fmt.Errorf("input has shape %v, expected [%d, M] (transA)", dims, k)
		}
		m := int(dims[1])
		for i := 0; i < m; i++ {
			row := a.row()
			for j := range row {
				row[j] = float64(vals[j*m+i])
			}
			if a.full() {
				a.flush(0)
			}
		}
		a.flush(0)
		return nil
	}
	if int(dims[len(dims)-1]) != k {
		return fmt.Errorf("input has shape %v, expected [..., %d]", dims, k)
	}
	for off := 0; off < len(vals); off += k {
		row := a.row()
		for j, v := range vals[off : off+k] {
			row[j] = float64(v)
		}
		if a.full() {
			a.flush(0)
		}
	}
	a.flush(0)
	return nil
}

// addPixels adds a ConvTranspose input [N, C, spatial...]: one row of the
// group's input channels per pixel.
func (a *hessianAcc) addPixels(dims []int64, vals []float32) error {
	l := a.lay
	if len(dims) < 3 || int(dims[1]) != l.cols*l.groups {
		return fmt.Errorf("input has shape %v, expected [N, %d, ...]", dims, l.cols*l.groups)
	}
	n, c, s := int(dims[0]), int(dims[1]), onnx.NumElements(dims[2:])
	for b := 0; b < n; b++ {
		for g := 0; g < l.groups; g++ {
			for p := 0; p < s; p++ {
				row := a.row()
				for i := range row {
					row[i] = float64(vals[(b*c+g*l.cols+i)*s+p])
				}
				if a.full() {
					a.flush(g)
				}
			}
			a.flush(g)
		}
	}
	return nil
}

// addPatches adds a Conv input [N, C, (H,) W] as im2col patches: one row
// per output position, columns (kernel position, input channel).
func (a *hessianAcc) addPatches(node *onnxpb.NodeProto, dims []int64, vals []float32) error {
	l := a.lay
	ig := l.span
	if len(dims) != len(l.kernel)+2 || int(dims[1]) != ig*l.groups {
		return fmt.Errorf("input has shape %v, expected [N, %d, %d spatial dims]", dims, ig*l.groups, len(l.kernel))
	}
	geo, err := convGeometry(node, dims[2:], l.kernel)
	if err != nil {
		return err
	}
	n, c := int(dims[0]), int(dims[1])
	inH, inW := geo.in[0], geo.in[1]
	for b := 0; b < n; b++ {
		for g := 0; g < l.groups; g++ {
			plane := vals[(b*c+g*ig)*inH*inW:]
			for oy := 0; oy < geo.out[0]; oy++ {
				for ox := 0; ox < geo.out[1]; ox++ {
					geo.patch(a.row(), plane, oy, ox, ig)
					if a.full() {
						a.flush(g)
					}
				}
			}
			a.flush(g)
		}
	}
	return nil
}

// geometry is a 1-D or 2-D convolution's sizes as 2-D (a 1-D one has
// height 1).
type geometry struct {
	in, out, kernel, stride, dil, pad [2]int
}

// patch fills row with the input values under the kernel at output
// position (oy, ox); plane starts at the group's first input channel.
func (geo *geometry) patch(row []float64, plane []float32, oy, ox, ig int) {
	inH, inW, kw := geo.in[0], geo.in[1], geo.kernel[1]
	hw := inH * inW
	for ky := 0; ky < geo.kernel[0]; ky++ {
		iy := oy*geo.stride[0] - geo.pad[0] + ky*geo.dil[0]
		for kx := 0; kx < kw; kx++ {
			ix := ox*geo.stride[1] - geo.pad[1] + kx*geo.dil[1]
			dst := row[(ky*kw+kx)*ig : (ky*kw+kx+1)*ig]
			if iy < 0 || iy >= inH || ix < 0 || ix >= inW {
				clear(dst)
				continue
			}
			off := iy*inW + ix
			for i := range dst {
				dst[i] = float64(plane[i*hw+off])
			}
		}
	}
}

// convGeometry reads a Conv node's strides, dilations and padding
// (explicit pads or auto_pad) for an input of the given spatial dims.
func convGeometry(node *onnxpb.NodeProto, spatial, kernel []int64) (*geometry, error) {
	r := len(kernel)
	if r < 1 || r > 2 || len(spatial) != r {
		return nil, fmt.Errorf("a %d-D convolution: hessian pruning calibrates 1-D and 2-D convolutions", r)
	}
	strides, _ := onnx.IntsAttr(node, "strides")
	dils, _ := onnx.IntsAttr(node, "dilations")
	pads, _ := onnx.IntsAttr(node, "pads")
	autoPad := onnx.StringAttr(node, "auto_pad", "NOTSET")
	geo := &geometry{in: [2]int{1, 1}, out: [2]int{1, 1}, kernel: [2]int{1, 1}, stride: [2]int{1, 1}, dil: [2]int{1, 1}}
	off := 2 - r
	for i := 0; i < r; i++ {
		j := i + off
		in, k, s, d := int(spatial[i]), int(kernel[i]), 1, 1
		if len(strides) == r {
			s = int(strides[i])
		}
		if len(dils) == r {
			d = int(dils[i])
		}
		ext := d*(k-1) + 1
		var out, begin int
		switch autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			out = (in + s - 1) / s
			total := max(0, (out-1)*s+ext-in)
			begin = total / 2
			if autoPad == "SAME_LOWER" {
				begin = total - total/2
			}
		case "VALID":
			out = (in-ext)/s + 1
		default:
			pb, pe := 0, 0
			if len(pads) == 2*r {
				pb, pe = int(pads[i]), int(pads[i+r])
			}
			out, begin = (in+pb+pe-ext)/s+1, pb
		}
		if out < 1 || s < 1 || d < 1 {
			return nil, fmt.Errorf("input %v, kernel %v, strides %v, dilations %v, pads %v: no output", spatial, kernel, strides, dils, pads)
		}
		geo.in[j], geo.out[j], geo.kernel[j], geo.stride[j], geo.dil[j], geo.pad[j] = in, out, k, s, d, begin
	}
	return geo, nil
}
