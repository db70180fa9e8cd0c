package quantize

import (
	"fmt"

	hess "github.com/kompress/kompress/runner/hessian"
	"github.com/kompress/kompress/runner/onnx"
)

// gptqLazy is the number of input features GPTQ rounds before it updates
// the features after them with one matrix product (gptq.py's blocksize):
// the lazy batch update that keeps the sweep compute-bound.
const gptqLazy = 128

// gptqMatrix is one weight as GPTQ sees it: rows output units, cols input
// features (the dimension weight-only blocks run along), row-major.
type gptqMatrix struct {
	rows, cols int
	w          []float64
}

// gptqBlocks is a weight GPTQ rounded: codes of type t for every weight
// (row-major rows×cols, as gptqMatrix), and the parameters of every block
// of blockSize features of every row. Every rounded weight of a model is
// held until the model is rewritten, so a code takes one byte, its
// offset from the type's lowest (every type GPTQ rounds to has at most
// 256 codes), not the int32 it is computed in.
type gptqBlocks struct {
	rows, cols, blockSize, nb int
	t                         QType
	codes                     []byte   // code - qmin
	params                    []Params // rows×nb
}

// code is the code of weight i (row-major rows×cols).
func (g *gptqBlocks) code(i int) int32 {
	qmin, _ := g.t.Range()
	return int32(g.codes[i]) + qmin
}

// gptq rounds m's weights to blocks of blockSize input features of type
// t, as gptq.py's fasterquant does with groupsize = blockSize (static
// groups off, no activation order), in float64:
//
//  1. h is the layer's Hessian 2·XᵀX/n over its calibration inputs
//     (cols×cols, consumed); hessian.Prepare drops dead features, adds
//     damp·mean(diag H) and returns U with H⁻¹ = UᵀU.
//  2. Features are swept in order. At the first feature of each block,
//     each row's block parameters come from the block's current weights
//     (already updated by the errors of the features before it), as
//     round to nearest finds them (blockParams: at 4 bits the clip
//     search, as gptq.py's Quantizer with mse=True).
//  3. Each weight w is rounded to q; its error e = (w - q)/U_jj is
//     pushed onto the later features of the lazy batch, w_k -= e·U_jk,
//     and after the batch onto all later features at once.
//
// m.w is consumed.
func gptq(m gptqMatrix, h []float64, damp float64, blockSize int, t QType, symmetric bool) (*gptqBlocks, error) {
	rows, cols := m.rows, m.cols
	u, err := hess.Prepare(h, m.w, rows, cols, damp)
	if err != nil {
		return nil, fmt.Errorf("%w: raise quantize.gptqDampening", err)
	}
	nb := (cols + blockSize - 1) / blockSize
	out := &gptqBlocks{
		rows: rows, cols: cols, blockSize: blockSize, nb: nb, t: t,
		codes: make([]byte, rows*cols), params: make([]Params, rows*nb),
	}
	qmin, qmax := t.Range()
	lazy := max(gptqLazy, blockSize) // a multiple of blockSize: blocks never straddle batches
	block := make([]float32, 0, blockSize)
	for i1 := 0; i1 < cols; i1 += lazy {
		i2 := min(i1+lazy, cols)
		count := i2 - i1
		errs := make([]float64, rows*count)
		for r := range rows {
			row := m.w[r*cols+i1 : r*cols+i2]
			for j := range count {
				col := i1 + j
				if col%blockSize == 0 {
					// The block's parameters are round to nearest's
					// (blockParams) on its weights as updated so far.
					v := block[:0]
					for _, x := range row[j:min(j+blockSize, count)] {
						v = append(v, float32(x))
					}
					lo, hi := minMax(v)
					out.params[r*nb+col/blockSize] = blockParams(v, lo, hi, t, symmetric)
				}
				p := out.params[r*nb+col/blockSize]
				c := quantizeValue(float32(row[j]), p.Scale, p.ZeroPoint, qmin, qmax)
				out.codes[r*cols+col] = byte(c - qmin)
				e := (row[j] - float64(p.Dequantize(c))) / u[col*cols+col]
				errs[r*count+j] = e
				urow := u[col*cols+i1 : col*cols+i2]
				for k := j + 1; k < count; k++ {
					row[k] -= e * urow[k]
				}
			}
		}
		hess.Propagate(m.w, u, errs, rows, cols, i1, i2)
	}
	return out, nil
}

// gptqMatrixOf views a 2-D weight as GPTQ's rows×cols, with in its
// input-feature axis (0: [K, N], a MatMul B; 1: [N, K], a Gemm B with
// transB).
func gptqMatrixOf(data []float32, dims []int64, in int) (gptqMatrix, error) {
	if len(dims) != 2 || (in != 0 && in != 1) {
		return gptqMatrix{}, fmt.Errorf("GPTQ takes 2-D weights, not %v (input axis %d)", dims, in)
	}
	k, n := int(dims[in]), int(dims[1-in])
	w := make([]float64, n*k)
	for a := range int(dims[0]) {
		for b := range int(dims[1]) {
			v := float64(data[a*int(dims[1])+b])
			if in == 0 {
				w[b*k+a] = v // dims [K, N]: a is k, b is n
			} else {
				w[a*k+b] = v
			}
		}
	}
	return gptqMatrix{rows: n, cols: k, w: w}, nil
}

// quantized lays the blocks out as Blocked does for the same 2-D weight
// (dims, blocks along axis in), for DequantizeLinear.
func (g *gptqBlocks) quantized(dims []int64, in int) *Quantized {
	scaleShape := append([]int64(nil), dims...)
	scaleShape[in] = int64(g.nb)
	q := &Quantized{
		Type: g.t, Shape: dims, Data: make([]byte, g.rows*g.cols),
		Scales: make([]float32, g.rows*g.nb), ZeroPoints: make([]int32, g.rows*g.nb),
		Axis: in, BlockSize: g.blockSize, ScaleShape: scaleShape,
	}
	for r := range g.rows {
		for c := range g.cols {
			i := r*g.cols + c // [N, K]
			if in == 0 {
				i = c*g.rows + r // [K, N]
			}
			q.Data[i] = byte(g.code(r*g.cols + c))
		}
		for b := range g.nb {
			i := r*g.nb + b // scales [N, nb]
			if in == 0 {
				i = b*g.rows + r // scales [nb, N]
			}
			p := g.params[r*g.nb+b]
			q.Scales[i], q.ZeroPoints[i] = p.Scale, p.ZeroPoint
		}
	}
	return q
}

// nbits lays the blocks out for MatMulNBits, as MatMulNBitsWeight does
// (K = cols, N = rows).
func (g *gptqBlocks) nbits(bits int, symmetric bool) *NBits {
	shift := int32(0)
	if symmetric {
		shift = 1 << (bits - 1)
	}
	out := &NBits{
		K: g.cols, N: g.rows, Bits: bits, BlockSize: g.blockSize, KBlocks: g.nb, BlobSize: g.blockSize * bits / 8,
		Scales: make([]float32, g.rows*g.nb), B: make([]byte, g.rows*g.nb*g.blockSize*bits/8),
	}
	if !symmetric {
		out.ZeroPoints = make([]byte, g.rows*out.ZeroPointsPerRow())
	}
	codes := make([]byte, g.blockSize)
	for n := range g.rows {
		for b := range g.nb {
			p := g.params[n*g.nb+b]
			out.Scales[n*g.nb+b] = p.Scale
			zp := byte(p.ZeroPoint + shift)
			for j := range codes {
				codes[j] = zp // padding past K dequantizes to 0
			}
			first, last := b*g.blockSize, min((b+1)*g.blockSize, g.cols)
			for k := first; k < last; k++ {
				codes[k-first] = byte(g.code(n*g.cols+k) + shift)
			}
			blob := out.B[(n*g.nb+b)*out.BlobSize : (n*g.nb+b+1)*out.BlobSize]
			if bits == 4 {
				onnx.PackInt4Into(blob, codes)
			} else {
				copy(blob, codes)
			}
			if !symmetric {
				putPacked(out.ZeroPoints[n*out.ZeroPointsPerRow():], b, zp, bits)
			}
		}
	}
	return out
}
