package quantize

import (
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/panics"
)

// MatMulNBitsRows is MatMulNBitsWeight for a row-major [K, N] weight read
// from r (its raw little-endian float32 bytes, from its external data
// file), one block of rows at a time. Each core reads the next block into
// a buffer of its own and quantizes it, while the other cores quantize
// the blocks they read: no core waits for another but for the moment one
// reads, and each block is quantized from the cache of the core that read
// it. It holds a block of rows per core instead of the weight.
func MatMulNBitsRows(r io.Reader, K, N, bits, blockSize int, symmetric bool) (*NBits, error) {
	if bits != 4 && bits != 8 {
		return nil, fmt.Errorf("MatMulNBits bits must be 4 or 8, got %d", bits)
	}
	if blockSize < 16 || blockSize&(blockSize-1) != 0 {
		return nil, fmt.Errorf("MatMulNBits block size must be a power of two of at least 16, got %d", blockSize)
	}
	if K <= 0 || N <= 0 {
		return nil, fmt.Errorf("MatMulNBits weight [%d, %d] is empty", K, N)
	}
	j := newNBitsJob(K, N, false, bits, blockSize, symmetric)
	blocks := &rowBlocks{r: r, K: K, N: N, blockSize: blockSize}
	var g panics.Group // a worker's panic is raised again by Wait
	for range min(runtime.GOMAXPROCS(0), j.out.KBlocks) {
		g.Go(func() {
			buf := make([]float32, blockSize*N)
			sc := newNBitsScratch(N, blockSize)
			for {
				b, rows := blocks.next(buf)
				if rows == nil {
					return
				}
				j.block(rows, b, 0, N, sc)
			}
		})
	}
	g.Wait()
	if blocks.err != nil {
		return nil, blocks.err
	}
	return j.result()
}

// rowBlocks hands out the blocks of rows of a [K, N] weight read from r,
// in order, to the workers that read them.
type rowBlocks struct {
	mu              sync.Mutex
	r               io.Reader
	K, N, blockSize int
	first           int // the next block's first row
	err             error
}

// next reads the next block into buf and returns its index and rows; nil
// rows after the last block or a failed read (err).
func (rb *rowBlocks) next(buf []float32) (int, []float32) {
	rb.mu.Lock()
	defer rb.mu.Unlock()
	if rb.err != nil || rb.first >= rb.K {
		return 0, nil
	}
	b, rows := rb.first/rb.blockSize, buf[:(min(rb.first+rb.blockSize, rb.K)-rb.first)*rb.N]
	if rb.err = onnx.ReadFloat32s(rb.r, rows); rb.err != nil {
		return 0, nil
	}
	rb.first += rb.blockSize
	return b, rows
}
