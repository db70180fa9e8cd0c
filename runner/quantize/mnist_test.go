package quantize

import (
	"context"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// mnistTargets are the accuracy drops (in points) each method may cost
// mnist-8.
var mnistTargets = []struct {
	name    string
	spec    Options
	maxDrop float64
	// kernels ONNX Runtime must run the quantized model with.
	kernels map[string]int
}{
	{"static int8 per-channel", Options{Method: Static}, 0.3,
		map[string]int{"QLinearConv": 2, "QGemm": 1, "Conv": 0}},
	{"dynamic int8", Options{Method: Dynamic}, 0.5,
		map[string]int{"ConvInteger": 2, "DynamicQuantizeMatMul": 1, "Conv": 0}},
	{"weight-only int4", Options{Method: WeightOnly, Bits: 4}, 1.0, nil},
}

// datasetCalibration feeds the first samples of d to m, as the runner's
// quantize stage does.
func datasetCalibration(t testing.TB, m *onnx.Model, d *dataset.Dataset, samples int) Calibration {
	t.Helper()
	data, err := feed.FromDataset(feed.Inputs(m), d)
	if err != nil {
		t.Fatal(err)
	}
	c, err := data.Take(samples).Batches(32)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// checkMNIST quantizes mnist-8 with each target method (static calibrated
// on calib's first 256 images), scores it on eval and checks the drop.
func checkMNIST(t *testing.T, eval, calib *dataset.Dataset) {
	orttest.Require(t)
	m := onnxtest.Model(t, onnxtest.MNIST8)
	base := orttest.MNIST8Accuracy(t, m, eval)
	t.Logf("fp32: %.2f%% on %d images", 100*base, eval.Len())
	for _, tt := range mnistTargets {
		q, r, err := Quantize(context.Background(), m, tt.spec, datasetCalibration(t, m, calib, 256))
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		acc := orttest.MNIST8Accuracy(t, q, eval)
		drop := 100 * (base - acc)
		b, _ := q.Bytes()
		t.Logf("%s: %.2f%% (drop %.2f points, %d bytes) — %s", tt.name, 100*acc, drop, len(b), r.Summary())
		k := optimizedOps(t, q)
		for op, n := range tt.kernels {
			if k[op] != n {
				t.Errorf("%s: optimized graph has %d %s, want %d (all: %v)", tt.name, k[op], op, n, k)
			}
		}
		if drop > tt.maxDrop {
			t.Errorf("%s: accuracy %.2f%% drops %.2f points from %.2f%%, want at most %.1f", tt.name, 100*acc, drop, 100*base, tt.maxDrop)
		}
	}
}

func TestMNISTAccuracy1k(t *testing.T) {
	d := onnxtest.MNIST(t, dataset.MNISTTest1k)
	checkMNIST(t, d, d)
}

// TestMNISTAccuracy10k gives the figures on the full test set (built by
// `make data`), calibrating on training images:
//
//	KOMPRESS_FIGURES=1 go test ./runner/quantize -run TestMNISTAccuracy10k -v
//
// TestMNISTAccuracy1k checks the same targets on every run.
func TestMNISTAccuracy10k(t *testing.T) {
	onnxtest.Figures(t, "needs `make data`; scores 10,000 images per method")
	checkMNIST(t, onnxtest.MNIST(t, dataset.MNISTTest10k), onnxtest.MNIST(t, dataset.MNISTTrain60k))
}
