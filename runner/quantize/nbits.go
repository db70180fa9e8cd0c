package quantize

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/panics"
)

// NBits is a weight in com.microsoft MatMulNBits layout (ONNX Runtime
// docs/ContribOperators.md): the [K, N] right-hand matrix quantized in
// blocks of BlockSize along K, stored per output column n.
type NBits struct {
	K, N, Bits, BlockSize int
	// KBlocks is ceil(K / BlockSize); BlobSize is BlockSize * Bits / 8.
	KBlocks, BlobSize int
	// B is [N, KBlocks, BlobSize] uint8: unsigned codes packed along K, for
	// 4 bits the first of each pair in the low nibble. The tail of a short
	// last block holds the zero point (it dequantizes to 0).
	B []byte
	// Scales is [N, KBlocks].
	Scales []float32
	// ZeroPoints is nil for symmetric weights (the operator's default zero
	// point 2^(Bits-1) applies), else packed uint8 [N, ceil(KBlocks*Bits/8)].
	ZeroPoints []byte
}

// ZeroPointsPerRow is the packed length of one column's zero points.
func (w *NBits) ZeroPointsPerRow() int { return (w.KBlocks*w.Bits + 7) / 8 }

// MatMulNBitsWeight quantizes a MatMul right-hand matrix for MatMulNBits.
// w is row-major [K, N] (a MatMul B, or a Gemm B with transB=0); with
// transposed it is row-major [N, K] (a Gemm B with transB=1). bits is 4 or
// 8. Symmetric blocks use the signed type (int4 [-8, 7], int8 [-127, 127])
// shifted by 2^(bits-1), which is the operator's default zero point, so no
// zero-point input is needed; asymmetric blocks use the unsigned type with
// a zero point per block.
func MatMulNBitsWeight(w []float32, K, N int, transposed bool, bits, blockSize int, symmetric bool) (*NBits, error) {
	if bits != 4 && bits != 8 {
		return nil, fmt.Errorf("MatMulNBits bits must be 4 or 8, got %d", bits)
	}
	if blockSize < 16 || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("MatMulNBits block size must be a power of two of at least 16, got %d", blockSize)
	}
	if K <= 0 || N <= 0 || len(w) != K*N {
		return nil, fmt.Errorf("MatMulNBits weight [%d, %d] needs %d values, got %d", K, N, K*N, len(w))
	}
	j := newNBitsJob(K, N, transposed, bits, blockSize, symmetric)
	// Output columns are independent: quantize them on every core, each
	// worker a range of columns. The values of a block of column n are
	// strided by N in [K, N] and contiguous in [N, K]: block by block,
	// each worker reads them in memory order (blockRange).
	parallelRows(N, func(from, to int) {
		sc := newNBitsScratch(to-from, blockSize)
		for b := range j.out.KBlocks {
			rows := w
			if !transposed {
				rows = w[b*blockSize*N : min((b+1)*blockSize, K)*N]
			}
			j.block(rows, b, from, to, sc)
		}
	})
	return j.result()
}

// nbitsJob quantizes one weight for MatMulNBits, block by block.
type nbitsJob struct {
	out                   *NBits
	t                     QType
	shift, qmin, qmax     int32
	symmetric, transposed bool
	// zeroPoints are the blocks' zero points one a byte, [N, KBlocks],
	// packed into out.ZeroPoints by result: at 4 bits two blocks share a
	// byte, which two workers quantizing them would both write.
	zeroPoints []byte
	// nonFinite: NaN and Inf are found where blocks' ranges are taken
	// (min and max carry them), not by a pass of their own.
	nonFinite atomic.Bool
}

func newNBitsJob(K, N int, transposed bool, bits, blockSize int, symmetric bool) *nbitsJob {
	t, shift := nbitsType(bits, symmetric), int32(0)
	if symmetric {
		shift = 1 << (bits - 1)
	}
	kb := (K + blockSize - 1) / blockSize
	out := &NBits{
		K: K, N: N, Bits: bits, BlockSize: blockSize, KBlocks: kb, BlobSize: blockSize * bits / 8,
		Scales: make([]float32, N*kb),
	}
	out.B = make([]byte, N*kb*out.BlobSize)
	j := &nbitsJob{out: out, t: t, shift: shift, symmetric: symmetric, transposed: transposed}
	j.qmin, j.qmax = t.Range()
	if !symmetric {
		out.ZeroPoints = make([]byte, N*out.ZeroPointsPerRow())
		j.zeroPoints = make([]byte, N*kb)
	}
	return j
}

// result is the quantized weight once every block is.
func (j *nbitsJob) result() (*NBits, error) {
	if j.nonFinite.Load() {
		return nil, errNotFinite
	}
	out, kb := j.out, j.out.KBlocks
	for n := range out.N {
		if j.zeroPoints == nil {
			break
		}
		row := out.ZeroPoints[n*out.ZeroPointsPerRow():]
		for b, zp := range j.zeroPoints[n*kb : (n+1)*kb] {
			putPacked(row, b, zp, out.Bits)
		}
	}
	return out, nil
}

// nbitsScratch is a worker's memory for a tile of its columns of one
// block.
type nbitsScratch struct {
	vals   []float32 // the tile's values, column by column
	lo, hi []float32 // and their ranges
	params []Params  // ComputeParams of the ranges
	codes  []byte
	lanes  clipLanes // the AVX2 kernels' (lanes)
}

// gatherTile is how many columns of a block are gathered and quantized
// at a time: the tile's 32 rows read and its columns written fit in the
// L1 cache (2 x 8 KB at blocks of 32), where gathering all of a worker's
// columns at once wrote them to L2 and read them back from there.
const gatherTile = 64

func newNBitsScratch(cols, blockSize int) *nbitsScratch {
	cols = min(cols, gatherTile)
	return &nbitsScratch{
		vals: make([]float32, cols*blockSize), lo: make([]float32, cols), hi: make([]float32, cols),
		params: make([]Params, cols), codes: make([]byte, blockSize),
	}
}

// block quantizes block b of columns [from, to). rows is the block's rows
// of a [K, N] weight (rows[(k-first)*N+n]), or the whole [N, K] weight
// when transposed.
func (j *nbitsJob) block(rows []float32, b, from, to int, sc *nbitsScratch) {
	out, blockSize := j.out, j.out.BlockSize
	K, N := out.K, out.N
	first, last := b*blockSize, min((b+1)*blockSize, K)
	if j.transposed {
		for n := from; n < to; n++ {
			v := rows[n*K+first : n*K+last]
			lo, hi := minMax(v)
			j.column(v, lo, hi, ComputeParams(lo, hi, j.t, j.symmetric), n, b, sc.codes)
		}
		return
	}
	from = j.lanes(rows, b, from, to, last-first, &sc.lanes)
	for t := from; t < to; t += gatherTile {
		end := min(t+gatherTile, to)
		// A column's values are N apart: gather the tile's, row by
		// row in memory order, so that each column's are contiguous,
		// taking the columns' ranges on the way.
		gatherRanges(sc.vals, sc.lo, sc.hi, rows, N, t, end, last-first, blockSize)
		for c := range end - t {
			sc.params[c] = ComputeParams(sc.lo[c], sc.hi[c], j.t, j.symmetric)
		}
		for n := t; n < end; n++ {
			c := n - t
			j.column(sc.vals[c*blockSize:][:last-first], sc.lo[c], sc.hi[c], sc.params[c], n, b, sc.codes)
		}
	}
}

// column quantizes v, block b of column n whose range is [lo, hi] and
// whose range's parameters are p, into its blob, scale and zero point.
// NaN and Inf carry into the block's range, which is where they are found.
func (j *nbitsJob) column(v []float32, lo, hi float32, p Params, n, b int, codes []byte) {
	out := j.out
	if !isFinite32(lo) || !isFinite32(hi) {
		j.nonFinite.Store(true)
	}
	p = clipped(v, lo, hi, p, j.t, j.symmetric)
	zp := byte(p.ZeroPoint + j.shift)
	roundCodes(codes, v, p, j.qmin, j.qmax, j.shift)
	for k := len(v); k < len(codes); k++ {
		codes[k] = zp // padding past K dequantizes to 0
	}
	i := n*out.KBlocks + b
	out.Scales[i] = p.Scale
	blob := out.B[i*out.BlobSize : (i+1)*out.BlobSize]
	if out.Bits == 4 {
		onnx.PackInt4Into(blob, codes)
	} else {
		copy(blob, codes)
	}
	if !j.symmetric {
		j.zeroPoints[i] = zp
	}
}

// gatherColumns copies rows [0, count) of columns [from, to) of a
// row-major matrix rows (stride values a row) into dst, column by column
// size apart: dst[(c-from)*size+k] = rows[k*stride+c].
func gatherColumns(dst, rows []float32, stride, from, to, count, size int) {
	for k := range count {
		for c, x := range rows[k*stride+from : k*stride+to] {
			dst[c*size+k] = x
		}
	}
}

// gatherRanges is gatherColumns that also sets lo[c-from] and hi[c-from]
// to each column's range (NaN if it holds one): one pass where the
// columns' running ranges are independent, not a chain per column.
func gatherRanges(dst, lo, hi, rows []float32, stride, from, to, count, size int) {
	copy(lo, rows[from:to])
	copy(hi, rows[from:to])
	for k := range count {
		for c, x := range rows[k*stride+from : k*stride+to] {
			dst[c*size+k] = x
			lo[c], hi[c] = min(lo[c], x), max(hi[c], x)
		}
	}
}

// parallelRows calls fn on disjoint ranges of [0, n) from as many
// goroutines as there are cores (one range per core).
func parallelRows(n int, fn func(from, to int)) {
	parallelRanges(columnRanges(n), func(_ int, r [2]int) { fn(r[0], r[1]) })
}

// columnRanges splits [0, n) into one range per core (fewer for small n).
func columnRanges(n int) [][2]int {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/64))
	rs := make([][2]int, workers)
	for i := range rs {
		rs[i] = [2]int{n * i / workers, n * (i + 1) / workers}
	}
	return rs
}

// parallelRanges calls fn on each range, each in a goroutine of its own.
func parallelRanges(rs [][2]int, fn func(i int, r [2]int)) {
	var g panics.Group // a worker's panic is raised again by Wait
	for i, r := range rs {
		g.Go(func() { fn(i, r) })
	}
	g.Wait()
}

// putPacked stores code at index i of a packed row of bits-wide codes.
func putPacked(row []byte, i int, code byte, bits int) {
	if bits == 8 {
		row[i] = code
		return
	}
	if i%2 == 0 {
		row[i/2] = row[i/2]&0xf0 | code&0x0f
	} else {
		row[i/2] = row[i/2]&0x0f | (code&0x0f)<<4
	}
}

// code returns the unsigned code at index i of a packed row.
func code(row []byte, i, bits int) int32 {
	if bits == 8 {
		return int32(row[i])
	}
	if i%2 == 0 {
		return int32(row[i/2] & 0x0f)
	}
	return int32(row[i/2] >> 4)
}

// Dequantize returns the [K, N] row-major matrix MatMulNBits multiplies by.
func (w *NBits) Dequantize() []float32 {
	out := make([]float32, w.K*w.N)
	for n := range w.N {
		for k := range w.K {
			b := k / w.BlockSize
			blob := w.B[(n*w.KBlocks+b)*w.BlobSize:]
			q := code(blob, k%w.BlockSize, w.Bits)
			zp := int32(1) << (w.Bits - 1)
			if w.ZeroPoints != nil {
				zp = code(w.ZeroPoints[n*w.ZeroPointsPerRow():], b, w.Bits)
			}
			out[k*w.N+n] = float32(q-zp) * w.Scales[n*w.KBlocks+b]
		}
	}
	return out
}

// nbitsType is the type MatMulNBits codes are computed in before the
// shift to unsigned: the signed type for symmetric blocks (their zero
// point is the operator's default 2^(bits-1) after the shift).
func nbitsType(bits int, symmetric bool) QType {
	switch {
	case bits == 4 && symmetric:
		return Int4
	case bits == 8 && symmetric:
		return Int8
	case bits == 8:
		return UInt8
	}
	return UInt4
}
