package quantize

import (
	"fmt"
	"io"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/panics"
)

// MatMulNBitsRows is MatMulNBitsWeight for a row-major [K, N] weight read
// from r (its raw little-endian float32 bytes, from its external data
// file): one block of rows at a time, into two buffers that are reused,
// the next block read while the cores quantize this one. It holds two
// blocks of rows instead of the weight, and quantizes each while it is
// still in the cache the read left it in.
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
	ranges := columnRanges(N)
	scratch := make([]*nbitsScratch, len(ranges))
	for i, rg := range ranges {
		scratch[i] = newNBitsScratch(rg[1]-rg[0], blockSize)
	}
	blocks := readBlocks(r, K, N, blockSize)
	defer blocks.stop()
	for b := range j.out.KBlocks {
		blk := blocks.next()
		if blk.err != nil {
			return nil, blk.err
		}
		parallelRanges(ranges, func(i int, rg [2]int) { j.block(blk.rows, b, rg[0], rg[1], scratch[i]) })
		blk.done()
	}
	return j.result()
}

// rowBlock is one block of rows read, or the error reading it; done
// gives its buffer back for the next read.
type rowBlock struct {
	rows []float32
	err  error
	done func()
}

// blockReader reads the blocks of rows of a [K, N] weight on a goroutine
// of its own, one ahead of the one being quantized. A panic there is
// raised again by next or stop, on the quantizing goroutine.
type blockReader struct {
	out    chan rowBlock
	quit   chan struct{}
	failed chan struct{}
	g      panics.Group
}

func readBlocks(r io.Reader, K, N, blockSize int) *blockReader {
	b := &blockReader{out: make(chan rowBlock, 1), quit: make(chan struct{}), failed: make(chan struct{})}
	free := make(chan []float32, 2)
	for range 2 {
		free <- make([]float32, blockSize*N)
	}
	b.g.OnPanic = func() { close(b.failed) }
	b.g.Go(func() {
		for first := 0; first < K; first += blockSize {
			var buf []float32
			select {
			case buf = <-free:
			case <-b.quit:
				return
			}
			rows := buf[:(min(first+blockSize, K)-first)*N]
			err := onnx.ReadFloat32s(r, rows)
			select {
			case b.out <- rowBlock{rows: rows, err: err, done: func() { free <- buf }}:
			case <-b.quit:
				return
			}
			if err != nil {
				return
			}
		}
	})
	return b
}

// next is the next block; it panics with the reader's panic if it had one.
func (b *blockReader) next() rowBlock {
	select {
	case blk := <-b.out:
		return blk
	case <-b.failed:
		b.g.Wait()
		panic("unreachable: the block reader failed without a panic")
	}
}

// stop ends the reads and waits for the reader (r is not read after).
func (b *blockReader) stop() {
	close(b.quit)
	b.g.Wait()
}
