package quantize

import (
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/onnx"
)

// benchLayers make a 12.6 M parameter MLP (three 2048x2048 MatMuls).
var benchLayers = [][2]int64{{2048, 2048}, {2048, 2048}, {2048, 2048}}

// writeBenchModel writes the generated model to dir and returns its path
// and size.
func writeBenchModel(b *testing.B, dir string) (string, int64) {
	b.Helper()
	bl := newBuilder(11)
	x := bl.Input("x", "N", benchLayers[0][0])
	r := rand.New(rand.NewPCG(12, 12))
	for i, l := range benchLayers {
		w := make([]float32, l[0]*l[1])
		for j := range w {
			w[j] = float32(r.NormFloat64() * 0.02)
		}
		x = bl.Node("MatMul", "h"+string(rune('0'+i)), []string{x, bl.Init("w"+string(rune('0'+i)), onnx.NewTensor([]int64{l[0], l[1]}, w))})
		if i < len(benchLayers)-1 {
			x = bl.Node("Relu", "r"+string(rune('0'+i)), []string{x})
		}
	}
	m := bl.Model(17, x)
	path := filepath.Join(dir, "mlp.onnx")
	if err := m.SaveFile(path, onnx.SaveOptions{}); err != nil {
		b.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return path, info.Size()
}

// peakHeap samples the live heap every millisecond until stopped.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// BenchmarkReadHashWrite is the baseline of the weight-only step: read the
// model file, hash it, write it back.
func BenchmarkReadHashWrite(b *testing.B) {
	dir := b.TempDir()
	path, size := writeBenchModel(b, dir)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		data, err := os.ReadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if err := os.WriteFile(filepath.Join(dir, "copy.onnx"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		_ = sum
	}
}

// BenchmarkWeightOnlyInt8 is the stage step on a 12.6 M parameter model:
// read and parse the file, quantize its weights to int8 blocks, serialize,
// hash and write the result. It reports the live heap's peak relative to
// the model's size (peak/model).
func BenchmarkWeightOnlyInt8(b *testing.B) {
	dir := b.TempDir()
	path, size := writeBenchModel(b, dir)
	spec := Options{Method: WeightOnly, Bits: 8}
	b.SetBytes(size)
	b.ResetTimer()
	var peak uint64
	for range b.N {
		stop := peakHeap()
		m, err := onnx.LoadFile(path)
		if err != nil {
			b.Fatal(err)
		}
		q, _, err := QuantizeInPlace(context.Background(), m, spec, nil)
		if err != nil {
			b.Fatal(err)
		}
		out, err := q.Bytes()
		if err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(out)
		if err := os.WriteFile(filepath.Join(dir, "int8.onnx"), out, 0o644); err != nil {
			b.Fatal(err)
		}
		_ = sum
		peak = max(peak, stop())
	}
	b.ReportMetric(float64(peak)/float64(size), "peak/model")
}
