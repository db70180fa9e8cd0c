package quantize

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestStaticShardsAreBitIdentical quantizes mnist-8 (static int8) with
// each calibration method on 1, 2, 4 and 16 workers: every shard count
// writes the same model, byte for byte, as accurate as the streaming
// collectors' model.
func TestStaticShardsAreBitIdentical(t *testing.T) {
	orttest.Require(t)
	m := onnxtest.Model(t, onnxtest.MNIST8)
	d := onnxtest.MNIST(t, dataset.MNISTTest1k)
	base := orttest.MNIST8Accuracy(t, m, d)
	for _, method := range []CalibrationMethod{CalibrationEntropy, CalibrationPercentile, CalibrationMinMax} {
		digests := map[int]string{}
		for _, shards := range []int{1, 2, 4, 16} {
			o := Options{Method: Static, Calibration: CalibrationOptions{Method: method, Samples: 256, Shards: shards}}
			q, _, err := Quantize(t.Context(), m, o, datasetCalibration(t, m, d, 256))
			if err != nil {
				t.Fatalf("%s, %d shards: %v", method, shards, err)
			}
			b, err := q.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(b)
			digests[shards] = hex.EncodeToString(sum[:])
			if shards == 1 {
				// Fixed bins choose ranges as good as the streaming
				// collectors' (Shards 0, ONNX Runtime's way).
				o.Calibration.Shards = 0
				s, _, err := Quantize(t.Context(), m, o, datasetCalibration(t, m, d, 256))
				if err != nil {
					t.Fatal(err)
				}
				acc, streamed := orttest.MNIST8Accuracy(t, q, d), orttest.MNIST8Accuracy(t, s, d)
				t.Logf("%s: %.2f%% with fixed bins, %.2f%% streaming, %.2f%% in float", method, 100*acc, 100*streamed, 100*base)
				if math.Abs(acc-streamed) > 0.003 {
					t.Errorf("%s: accuracy %.2f%% with fixed bins, %.2f%% streaming: want them within 0.3 points", method, 100*acc, 100*streamed)
				}
			}
		}
		for shards, dg := range digests {
			if dg != digests[1] {
				t.Errorf("%s: %d shards wrote sha256:%s, one wrote sha256:%s", method, shards, dg, digests[1])
			}
		}
	}
}
