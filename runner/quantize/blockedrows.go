package quantize

import (
	"fmt"
	"io"
	"runtime"
	"sync/atomic"

	"github.com/kompress/kompress/runner/panics"
)

// BlockedRows is Blocked(data, [R, C], 1, ...) for a row-major [R, C]
// weight read from r (its raw little-endian float32 bytes, from its
// external data file), blocks along its rows (an embedding table's):
// each core reads the next rows into a buffer of its own and quantizes
// them, as MatMulNBitsRows does. A weight holding NaN or Inf gives
// errNotFinite, found in its blocks' ranges.
func BlockedRows(r io.Reader, R, C, blockSize int, t QType, symmetric bool) (*Quantized, error) {
	if R <= 0 || C <= 0 || blockSize < 1 {
		return nil, fmt.Errorf("blocks of %d along the rows of a [%d, %d] weight: want positive sizes", blockSize, R, C)
	}
	nb := (C + blockSize - 1) / blockSize
	q := &Quantized{
		Type: t, Shape: []int64{int64(R), int64(C)}, Data: make([]byte, R*C),
		Scales: make([]float32, R*nb), ZeroPoints: make([]int32, R*nb),
		Axis: 1, BlockSize: blockSize, ScaleShape: []int64{int64(R), int64(nb)},
	}
	// Reads of about 256 KB: few enough calls, small enough to stay in
	// the cache of the core that reads them.
	per := max(1, (1<<16)/C)
	chunks := &rowBlocks{r: r, K: R, N: C, blockSize: per}
	var nonFinite atomic.Bool
	var g panics.Group // a worker's panic is raised again by Wait
	for range min(runtime.GOMAXPROCS(0), (R+per-1)/per) {
		g.Go(func() {
			buf := make([]float32, per*C)
			for {
				i, rows := chunks.next(buf)
				if rows == nil {
					return
				}
				for k := range len(rows) / C {
					if !quantizeRow(q, rows[k*C:(k+1)*C], i*per+k, symmetric) {
						nonFinite.Store(true)
					}
				}
			}
		})
	}
	g.Wait()
	if chunks.err != nil {
		return nil, chunks.err
	}
	if nonFinite.Load() {
		return nil, errNotFinite
	}
	return q, nil
}

// quantizeRow quantizes row r of a [R, C] weight blocked along its rows
// into q, and says whether its values are all finite. Finite blocks are
// rounded by roundCodes, others value by value by quantizeValue (which
// maps NaN to the zero point), so that Blocked's codes stay its own for
// any input.
func quantizeRow(q *Quantized, row []float32, r int, symmetric bool) bool {
	C, blockSize := len(row), q.BlockSize
	nb := (C + blockSize - 1) / blockSize
	qmin, qmax := q.Type.Range()
	finite := true
	for b := range nb {
		first, last := b*blockSize, min((b+1)*blockSize, C)
		v, codes := row[first:last], q.Data[r*C+first:r*C+last]
		lo, hi := minMax(v)
		p := blockParams(v, lo, hi, q.Type, symmetric)
		q.Scales[r*nb+b], q.ZeroPoints[r*nb+b] = p.Scale, p.ZeroPoint
		if isFinite32(lo) && isFinite32(hi) {
			roundCodes(codes, v, p, qmin, qmax, 0)
			continue
		}
		finite = false
		for k, x := range v {
			codes[k] = byte(quantizeValue(x, p.Scale, p.ZeroPoint, qmin, qmax))
		}
	}
	return finite
}
