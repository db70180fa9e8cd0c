package feed_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// A model input whose declared shape would make a synthesized tensor
// overflow or pass onnx.MaxDenseBytes fails as bad input before anything
// is allocated (issue 11: declared sizes never size an allocation).
func TestSynthesizeRefusesHugeShapes(t *testing.T) {
	for _, dims := range [][]int64{{1 << 31, 1 << 31, 4, 4}, {1, 3, 1 << 15, 1 << 15}, {-1, 1 << 40, 1 << 40}} {
		ins := []feed.Input{{Name: "x", DType: onnx.Float, Dims: dims}}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := feed.Synthesize(ins, feed.Synth{Samples: 1})
		runtime.ReadMemStats(&after)
		if !fault.IsBadInput(err) || !strings.Contains(err.Error(), `input "x" would be synthesized at shape`) {
			t.Errorf("dims %v: error %v, want bad input naming the input and its shape", dims, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 1<<20 {
			t.Errorf("dims %v: allocated %d bytes", dims, n)
		}
	}
}
