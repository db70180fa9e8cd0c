package quantize

import (
	"context"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// vggNet is a small VGG-style classifier: five 3x3 Conv+Relu layers, two
// MaxPools, global average pooling and a Gemm, on 3x64x64 images.
func vggNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 64, 64)
	conv := func(name, in string, cin, cout int64) string {
		c := b.Node("Conv", name, []string{in, b.weight(name+"_w", cout, cin, 3, 3), b.weight(name+"_b", cout)}, onnx.AttrInts("pads", 1, 1, 1, 1))
		return b.Node("Relu", name+"_relu", []string{c})
	}
	pool := func(name, in string) string {
		return b.Node("MaxPool", name, []string{in}, onnx.AttrInts("kernel_shape", 2, 2), onnx.AttrInts("strides", 2, 2))
	}
	h := conv("c1", x, 3, 32)
	h = conv("c2", h, 32, 64)
	h = pool("p1", h)
	h = conv("c3", h, 64, 64)
	h = conv("c4", h, 64, 128)
	h = pool("p2", h)
	h = conv("c5", h, 128, 128)
	h = b.Node("GlobalAveragePool", "gap", []string{h})
	h = b.Node("Flatten", "flat", []string{h})
	y := b.Node("Gemm", "y", []string{h, b.weight("fc_w", 10, 128), b.weight("fc_b", 10)}, onnx.AttrInt("transB", 1))
	return b.Model(13, y)
}

// timeRuns is the mean time of n runs of a session on in, after a warm-up.
func timeRuns(b *testing.B, s *ort.Session, in map[string]*onnx.Tensor, n int) time.Duration {
	b.Helper()
	if _, err := s.Run(in); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for range n {
		if _, err := s.Run(in); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start) / time.Duration(n)
}

func session(b *testing.B, m *onnx.Model) *ort.Session {
	b.Helper()
	data, err := m.Bytes()
	if err != nil {
		b.Fatal(err)
	}
	s, err := ort.NewSession(m.Name, data, ort.Options{IntraOpThreads: 1})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkStaticSpeedup compares ONNX Runtime's latency for a
// convolutional model at batch 8 in float32 and after static int8
// quantization (one intra-op thread each, runs interleaved), and reports
// the milliseconds per batch and the speedup.
func BenchmarkStaticSpeedup(b *testing.B) {
	orttest.Require(b)
	m := vggNet(1)
	calib := randomBatches(3, "x", 4, 8, 3, 64, 64)
	q, _, err := Quantize(context.Background(), m, Options{Method: Static}, NewBatches(calib...))
	if err != nil {
		b.Fatal(err)
	}
	fs, qs := session(b, m), session(b, q)
	defer fs.Close()
	defer qs.Close()
	in := randomBatches(4, "x", 1, 8, 3, 64, 64)[0]
	var f, i time.Duration
	b.ResetTimer()
	for range b.N {
		f += timeRuns(b, fs, in, 5)
		i += timeRuns(b, qs, in, 5)
	}
	b.ReportMetric(float64(f.Microseconds())/1000/float64(b.N), "fp32-ms")
	b.ReportMetric(float64(i.Microseconds())/1000/float64(b.N), "int8-ms")
	b.ReportMetric(float64(f)/float64(i), "speedup")
}

func TestVGGNetRunsOnIntegerKernels(t *testing.T) {
	orttest.Require(t)
	m := vggNet(1)
	q, r, err := Quantize(context.Background(), m, Options{Method: Static}, NewBatches(randomBatches(3, "x", 2, 4, 3, 64, 64)...))
	if err != nil {
		t.Fatal(err)
	}
	k := optimizedOps(t, q)
	if k["QLinearConv"] != 5 || k["Conv"] != 0 {
		t.Errorf("optimized graph %v, want the 5 Convs as QLinearConv (fidelity %.4f, %s)", k, r.Fidelity, r.Summary())
	}
	in := randomBatches(4, "x", 1, 2, 3, 64, 64)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.99 {
		t.Errorf("cosine to the float model %.4f", c)
	}
}
