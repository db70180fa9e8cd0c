package quantize

import (
	"fmt"
	"io"
	"runtime"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/panics"
)

// MatMulNBitsRows is MatMulNBitsWeight for a row-major [K, N] weight read
// from r (its raw little-endian float32 bytes, from its external data
// file): one block of rows at a time, into a few buffers that are reused.
// Each core quantizes whole blocks, taking the next one read as soon as
// it is done with its last, while a reader fills the free buffers: no
// core waits for another, only, if it comes to that, for the reads. It
// holds a few blocks of rows instead of the weight, and quantizes each
// while it is still in the cache the read left it in.
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
	workers := min(runtime.GOMAXPROCS(0), j.out.KBlocks)
	// Two buffers more than workers: one being read, one read ahead.
	blocks := readBlocks(r, K, N, blockSize, workers+2)
	defer blocks.stop()
	errs := make([]error, workers)
	var g panics.Group // a worker's panic is raised again by Wait
	for w := range workers {
		g.Go(func() {
			sc := newNBitsScratch(N, blockSize)
			for {
				blk, ok := blocks.next()
				if !ok || blk.err != nil {
					errs[w] = blk.err
					return
				}
				j.block(blk.rows, blk.index, 0, N, sc)
				blk.done()
			}
		})
	}
	g.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return j.result()
}

// rowBlock is block index of rows read, or the error reading it; done
// gives its buffer back for the next read.
type rowBlock struct {
	index int
	rows  []float32
	err   error
	done  func()
}

// blockReader reads the blocks of rows of a [K, N] weight on a goroutine
// of its own, into free buffers, ahead of the ones being quantized. A
// panic there is raised again by next or stop, on the goroutine that
// calls them.
type blockReader struct {
	out    chan rowBlock
	quit   chan struct{}
	failed chan struct{}
	g      panics.Group
}

// readBlocks reads r's blocks into buffers buffers, in order; out is
// closed after the last block, or after a block with an error.
func readBlocks(r io.Reader, K, N, blockSize, buffers int) *blockReader {
	b := &blockReader{out: make(chan rowBlock, buffers), quit: make(chan struct{}), failed: make(chan struct{})}
	free := make(chan []float32, buffers)
	for range buffers {
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
			case b.out <- rowBlock{index: first / blockSize, rows: rows, err: err, done: func() { free <- buf }}:
			case <-b.quit:
				return
			}
			if err != nil {
				break
			}
		}
		close(b.out)
	})
	return b
}

// next is the next block read, or false after the last one; it panics
// with the reader's panic if it had one.
func (b *blockReader) next() (rowBlock, bool) {
	select {
	case blk, ok := <-b.out:
		return blk, ok
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
