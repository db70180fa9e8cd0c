//go:build unix

package quantize

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// scanSink keeps the baseline's result alive.
var scanSink float32

// BenchmarkNBitsBlock quantizes one block of 32 rows of a [K, 8192]
// Laplace weight with outliers (the 1.1 B decoder's widest) to 4 bits
// with zero points and the clip search, on one goroutine, against a plain
// min/max scan of the same rows: with the AVX2 kernels where the machine
// has them (default), and with the Go code (go). x-scan is the
// quantizer's time over the scan's and ns/value its time per weight, both
// in CPU time of the benchmark's thread, which other processes sharing
// the cores do not inflate as they do the wall time (ns/op).
func BenchmarkNBitsBlock(b *testing.B) {
	b.Run("default", benchNBitsBlock)
	b.Run("go", func(b *testing.B) { withoutAVX2(func() { benchNBitsBlock(b) }) })
}

func benchNBitsBlock(b *testing.B) {
	const blockSize, n = 32, 8192
	rows := outlierWeights(5, blockSize, n)
	j := newNBitsJob(blockSize, n, false, 4, blockSize, false)
	sc := newNBitsScratch(n, blockSize)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var scan, quant time.Duration
	for b.Loop() {
		t0 := threadCPU(b)
		lo, hi := minMax(rows)
		t1 := threadCPU(b)
		j.block(rows, 0, 0, n, sc)
		quant += threadCPU(b) - t1
		scan += t1 - t0
		scanSink += lo + hi
	}
	b.ReportMetric(float64(quant)/float64(scan), "x-scan")
	b.ReportMetric(float64(quant.Nanoseconds())/float64(b.N*len(rows)), "ns/value")
}

// threadCPU is the CPU time the calling thread has used (to the
// nanosecond, where getrusage counts scheduler ticks).
func threadCPU(b *testing.B) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ts.Nano())
}
