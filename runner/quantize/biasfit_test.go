package quantize

import (
	"math"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// A channel of tiny weights with a large bias: with scale
// x_scale * w_scale the bias would be far outside int32 and saturate to a
// fraction of its value. The weight scale must be raised instead, so the
// bias survives while the tiny weights round to (nearly) zero.
func TestStaticBiasFitsInt32(t *testing.T) {
	orttest.Require(t)
	for _, perChannel := range []bool{true, false} {
		b := newBuilder(1)
		x := b.Input("x", "N", 1, 4, 4)
		// Channel 0 is normal (weight 1, bias 0.5); channels 1 and 2 have
		// weights of 1e-7 and biases 5 and -4.5.
		b.Init("w", onnx.NewTensor([]int64{3, 1, 1, 1}, []float32{1, 1e-7, 1e-7}))
		b.Init("b", onnx.NewTensor([]int64{3}, []float32{0.5, 5, -4.5}))
		y := b.Node("Conv", "y", []string{x, "w", "b"})
		m := b.Model(13, y)
		o, err := Options{Method: Static, PerTensor: !perChannel}.resolve()
		if err != nil {
			t.Fatal(err)
		}
		// x in [-3, 3] as uint8: scale 6/255.
		ranges := map[string]Range{"x": {Min: -3, Max: 3}, "y": {Min: -6, Max: 6}}
		q, _, err := buildStatic(m, o, ranges, nil, &Report{})
		if err != nil {
			t.Fatal(err)
		}
		codes := initializer(t, q, "b_quantized").Data.([]int32)
		scales := initializer(t, q, "b_scale").Data.([]float32)
		for i, want := range []float64{0.5, 5, -4.5} {
			if got := float64(codes[i]) * float64(scales[i]); math.Abs(got-want) > float64(scales[i])/2 {
				t.Errorf("perChannel %v: bias[%d] dequantizes to %v (code %d), want %v within half a step", perChannel, i, got, codes[i], want)
			}
		}
		ws := initializer(t, q, "w_scale").Data.([]float32)
		if perChannel && ws[0] != 1.0/127 {
			t.Errorf("channel 0's weight scale %v changed, want 1/127", ws[0])
		}
		in := randomBatches(2, "x", 1, 1, 1, 4, 4)[0]
		got, ref := run(t, q, in)["y"].Data.([]float32), run(t, m, in)["y"].Data.([]float32)
		// Output step 12/255, input step 6/255 (times weight 1 on channel 0).
		for i := range ref {
			if math.Abs(float64(got[i]-ref[i])) > 0.05 {
				t.Fatalf("perChannel %v: output[%d] = %v, float model %v", perChannel, i, got[i], ref[i])
			}
		}
	}
}
