package quantize

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
)

// Quantized is a quantized tensor with its parameters laid out as
// DequantizeLinear reads them.
type Quantized struct {
	Type  QType
	Shape []int64
	// Data holds one element per byte, two's complement for signed types
	// (the raw_data of an 8-bit ONNX tensor; 4-bit types are packed with
	// PackNibbles before they are stored).
	Data []byte
	// Scales and ZeroPoints: one for per-tensor, Shape[Axis] for per-axis,
	// ScaleShape for blocked.
	Scales     []float32
	ZeroPoints []int32
	// Axis is the quantized axis, -1 for per-tensor.
	Axis int
	// BlockSize is 0 unless blocked along Axis.
	BlockSize int
	// ScaleShape is the shape of Scales and ZeroPoints: [] per-tensor,
	// [Shape[Axis]] per-axis, Shape with Axis divided into blocks when
	// blocked.
	ScaleShape []int64
}

// numElements multiplies dims; a negative dim is an error.
func numElements(shape []int64) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		n *= int(d)
	}
	return n, nil
}

// axisSplit returns the sizes around axis: outer * dim * inner = len(data).
func axisSplit(shape []int64, axis int) (outer, dim, inner int) {
	outer, inner = 1, 1
	for i, d := range shape {
		switch {
		case i < axis:
			outer *= int(d)
		case i > axis:
			inner *= int(d)
		}
	}
	return outer, int(shape[axis]), inner
}

func checkData(data []float32, shape []int64) error {
	n, err := numElements(shape)
	if err != nil {
		return err
	}
	if n != len(data) {
		return fmt.Errorf("shape %v holds %d elements but the data has %d", shape, n, len(data))
	}
	return nil
}

// PerTensor quantizes data with one scale and zero point over its range.
func PerTensor(data []float32, shape []int64, t QType, symmetric bool) (*Quantized, error) {
	if err := checkData(data, shape); err != nil {
		return nil, err
	}
	lo, hi := minMax(data)
	p := ComputeParams(lo, hi, t, symmetric)
	q := &Quantized{
		Type: t, Shape: shape, Data: make([]byte, len(data)),
		Scales: []float32{p.Scale}, ZeroPoints: []int32{p.ZeroPoint},
		Axis: -1, ScaleShape: []int64{},
	}
	qmin, qmax := t.Range()
	for i, x := range data {
		q.Data[i] = byte(quantizeValue(x, p.Scale, p.ZeroPoint, qmin, qmax))
	}
	return q, nil
}

// PerAxis quantizes data with one scale and zero point per index of axis
// (per output channel for Conv weights, axis 0).
func PerAxis(data []float32, shape []int64, axis int, t QType, symmetric bool) (*Quantized, error) {
	if err := checkData(data, shape); err != nil {
		return nil, err
	}
	if axis < 0 || axis >= len(shape) {
		return nil, fmt.Errorf("axis %d is out of range for shape %v", axis, shape)
	}
	outer, dim, inner := axisSplit(shape, axis)
	lo := make([]float32, dim)
	hi := make([]float32, dim)
	for c := range dim {
		lo[c], hi[c] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	for o := range outer {
		for c := range dim {
			base := (o*dim + c) * inner
			l, h := minMax(data[base : base+inner])
			lo[c], hi[c] = min(lo[c], l), max(hi[c], h)
		}
	}
	q := &Quantized{
		Type: t, Shape: shape, Data: make([]byte, len(data)),
		Scales: make([]float32, dim), ZeroPoints: make([]int32, dim),
		Axis: axis, ScaleShape: []int64{int64(dim)},
	}
	for c := range dim {
		p := ComputeParams(lo[c], hi[c], t, symmetric)
		q.Scales[c], q.ZeroPoints[c] = p.Scale, p.ZeroPoint
	}
	qmin, qmax := t.Range()
	for o := range outer {
		for c := range dim {
			base := (o*dim + c) * inner
			s, z := q.Scales[c], q.ZeroPoints[c]
			for i, x := range data[base : base+inner] {
				q.Data[base+i] = byte(quantizeValue(x, s, z, qmin, qmax))
			}
		}
	}
	return q, nil
}

// Blocked quantizes data in blocks of blockSize consecutive elements along
// axis, as DequantizeLinear-21 with block_size reads them: the scale tensor
// has data's rank, ceil(shape[axis]/blockSize) along axis and data's other
// dimensions, and element [.., j, ..] uses scale [.., j/blockSize, ..]. The
// last block may be short.
func Blocked(data []float32, shape []int64, axis, blockSize int, t QType, symmetric bool) (*Quantized, error) {
	if err := checkData(data, shape); err != nil {
		return nil, err
	}
	if axis < 0 || axis >= len(shape) {
		return nil, fmt.Errorf("axis %d is out of range for shape %v", axis, shape)
	}
	if blockSize < 1 {
		return nil, fmt.Errorf("block size %d must be positive", blockSize)
	}
	outer, dim, inner := axisSplit(shape, axis)
	nb := (dim + blockSize - 1) / blockSize
	scaleShape := append([]int64(nil), shape...)
	scaleShape[axis] = int64(nb)
	q := &Quantized{
		Type: t, Shape: shape, Data: make([]byte, len(data)),
		Scales: make([]float32, outer*nb*inner), ZeroPoints: make([]int32, outer*nb*inner),
		Axis: axis, BlockSize: blockSize, ScaleShape: scaleShape,
	}
	qmin, qmax := t.Range()
	// Blocks are strided by inner in data: walk each block's rows in order,
	// keeping one running range per column, so memory is read sequentially.
	// Outer slices are independent: they are spread over the cores (an
	// embedding table is one slice per token).
	parallelRows(outer, func(from, to int) {
		blockedRange(data, q, from, to, dim, inner, nb, blockSize, t, symmetric, qmin, qmax)
	})
	return q, nil
}

// blockedRange quantizes outer slices [from, to) of data into q.
func blockedRange(data []float32, q *Quantized, from, to, dim, inner, nb, blockSize int, t QType, symmetric bool, qmin, qmax int32) {
	if inner == 1 {
		// Blocks along contiguous rows (an embedding table's): nothing
		// to gather.
		for o := from; o < to; o++ {
			quantizeRow(q, data[o*dim:(o+1)*dim], o, symmetric)
		}
		return
	}
	vals := make([]float32, inner*blockSize)
	for o := from; o < to; o++ {
		for b := range nb {
			first, last := b*blockSize, min((b+1)*blockSize, dim)
			// A block's values are inner apart: gather them, row by row
			// in memory order, so that each column's are contiguous.
			gatherColumns(vals, data[(o*dim+first)*inner:], inner, 0, inner, last-first, blockSize)
			base := (o*nb + b) * inner
			for i := range inner {
				v := vals[i*blockSize:][:last-first]
				lo, hi := minMax(v)
				p := blockParams(v, lo, hi, t, symmetric)
				q.Scales[base+i], q.ZeroPoints[base+i] = p.Scale, p.ZeroPoint
				for k, x := range v {
					q.Data[(o*dim+first+k)*inner+i] = byte(quantizeValue(x, p.Scale, p.ZeroPoint, qmin, qmax))
				}
			}
		}
	}
}

// Value returns element i as a signed integer.
func (q *Quantized) Value(i int) int32 {
	if q.Type.Signed() {
		v := int32(int8(q.Data[i]))
		if q.Type.Bits() == 4 {
			// Sign-extend the low nibble.
			v = int32(int8(q.Data[i]<<4) >> 4)
		}
		return v
	}
	if q.Type.Bits() == 4 {
		return int32(q.Data[i] & 0x0f)
	}
	return int32(q.Data[i])
}

// Dequantize returns the float values DequantizeLinear computes from q.
func (q *Quantized) Dequantize() []float32 {
	out := make([]float32, len(q.Data))
	if q.Axis < 0 {
		for i := range out {
			out[i] = float32(q.Value(i)-q.ZeroPoints[0]) * q.Scales[0]
		}
		return out
	}
	outer, dim, inner := axisSplit(q.Shape, q.Axis)
	nb, bs := dim, 1
	if q.BlockSize > 0 {
		nb, bs = int(q.ScaleShape[q.Axis]), q.BlockSize
	}
	for o := range outer {
		for j := range dim {
			for i := range inner {
				k := (o*dim+j)*inner + i
				si := j
				if q.BlockSize > 0 {
					si = (o*nb+j/bs)*inner + i
				}
				out[k] = float32(q.Value(k)-q.ZeroPoints[si]) * q.Scales[si]
			}
		}
	}
	return out
}

// minMax is the range of data; a NaN in data makes both ends NaN.
func minMax(data []float32) (lo, hi float32) {
	if len(data) == 0 {
		return 0, 0
	}
	// Two ranges, of the even and the odd elements: min and max (which
	// order NaNs) take a few instructions each, and two chains run
	// side by side where one waits on its last result.
	lo0, hi0, lo1, hi1 := data[0], data[0], data[0], data[0]
	i := 1
	for ; i+1 < len(data); i += 2 {
		lo0, hi0 = min(lo0, data[i]), max(hi0, data[i])
		lo1, hi1 = min(lo1, data[i+1]), max(hi1, data[i+1])
	}
	if i < len(data) {
		lo0, hi0 = min(lo0, data[i]), max(hi0, data[i])
	}
	return min(lo0, lo1), max(hi0, hi1)
}

// PackNibbles packs 4-bit elements (one per byte, low nibble) two per byte,
// the first element of each pair in the low nibble, as ONNX stores int4 and
// uint4 tensors; an odd count leaves the last high nibble zero.
func PackNibbles(vals []byte) []byte {
	out := make([]byte, (len(vals)+1)/2)
	onnx.PackInt4Into(out, vals)
	return out
}
