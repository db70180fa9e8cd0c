package quantize

import (
	"encoding/binary"

	"golang.org/x/sys/cpu"
)

// useAVX2 selects the AVX2 kernels of lanes_amd64.s for 4-bit blocks: the
// clip search and the codes of eight columns at once, read straight from
// the rows (no gather), for several times less CPU than the Go code.
var useAVX2 = cpu.X86.HasAVX2

// clipLanes is the kernels' memory for eight columns of a block; the
// assembly reads it at fixed offsets (TestClipLanesLayout).
type clipLanes struct {
	scale  [8]float32    // ComputeParams' scales in, the chosen ones out
	zp     [8]int32      // zero points
	codes  [16][8]uint32 // packed codes: rows 8g to 8g+7 of lane i in codes[g][i]
	lo, hi [8]float32    // the columns' ranges
}

// clipConsts are a weight's constants for clipCodesAVX2.
type clipConsts struct {
	ratios            [3]float32
	qmin, qmax, shift int32
}

//go:noescape
func rangesAVX2(rows *float32, stride, count int, lo, hi *[8]float32) int

//go:noescape
func clipCodesAVX2(rows *float32, stride, count int, l *clipLanes, c *clipConsts)

// lanes quantizes columns [from, to) of block b (count rows of rows) eight
// at a time with the AVX2 kernels, and returns the first column it left
// to the Go code: all of them without AVX2, at 8 bits (no clip search),
// for a short last block or one of more than 128 rows, and the last
// columns short of eight.
func (j *nbitsJob) lanes(rows []float32, b, from, to, count int, l *clipLanes) int {
	out := j.out
	if !useAVX2 || out.Bits != 4 || count != out.BlockSize || count > 8*len(l.codes) {
		return from
	}
	c := clipConsts{ratios: clipAsymmetric, qmin: j.qmin, qmax: j.qmax, shift: j.shift}
	if j.symmetric {
		c.ratios = clipSymmetric
	}
	N := out.N
	n := from
	for ; n+8 <= to; n += 8 {
		_ = rows[(count-1)*N+n+7] // the kernels read columns [n, n+8) of rows [0, count)
		nan := rangesAVX2(&rows[n], 4*N, count, &l.lo, &l.hi)
		for i := range 8 {
			p := ComputeParams(l.lo[i], l.hi[i], j.t, j.symmetric)
			l.scale[i], l.zp[i] = p.Scale, p.ZeroPoint
		}
		clipCodesAVX2(&rows[n], 4*N, count, l, &c)
		for i := range 8 {
			if nan&(1<<i) != 0 || !isFinite32(l.lo[i]) || !isFinite32(l.hi[i]) {
				j.nonFinite.Store(true)
			}
			k := (n+i)*out.KBlocks + b
			out.Scales[k] = l.scale[i]
			blob := out.B[k*out.BlobSize : (k+1)*out.BlobSize]
			for g := range count / 8 {
				binary.LittleEndian.PutUint32(blob[4*g:], l.codes[g][i])
			}
			if !j.symmetric {
				j.zeroPoints[k] = byte(l.zp[i] + j.shift)
			}
		}
	}
	return n
}
