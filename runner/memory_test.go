package runner

import (
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// A model that cannot be transformed under the memory limit is refused
// before it is read, as bad input (retrying cannot help), naming the
// limit and what would do; without a limit, or under it, nothing is
// refused.
func TestCheckMemory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	tests := []struct {
		name  string
		limit int64
		size  int64
		say   string
	}{
		{"no limit", math.MaxInt64, 10 << 30, ""},
		{"under the limit", 1 << 30, 200 << 20, ""},
		{"past the limit", 1 << 30, 300 << 20, "takes about 1388314624 (3x: read, parsed, written; ONNX Runtime measuring it against the source; the runtimes), past the memory limit of 1073741824 bytes (GOMEMLIMIT, set from the container's memory limit): raise the stage's resources.limits.memory to at least 1542571805"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.limit)
			err := checkMemory("s3://m/model.onnx", tc.size, 0.2)
			if tc.say == "" {
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != pipeline.ExitBadInput || e.Reason != "InsufficientMemory" || !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error = %#v, want exit %d, reason InsufficientMemory, saying %q", err, pipeline.ExitBadInput, tc.say)
			}
		})
	}
}

// A streamed model needs its structure, a few tensors, the weights the
// stage keeps and what ONNX Runtime holds to measure it, not 3x its
// bytes: a model refused whole fits streamed; below what streaming
// needs, it is refused before a weight is read, naming the limit.
func TestCheckStreamedMemory(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	const data = 1 << 30
	tests := []struct {
		name  string
		limit int64
		say   string
	}{
		{"no limit", math.MaxInt64, ""},
		// 3 x 1 MiB + 4 x 64 MiB + 0.2 GiB + 1 GiB + 0.2 GiB + 64 MiB,
		// under the 5 GiB a model in one file of these bytes would need.
		{"under the limit", 1800 << 20, ""},
		{"past the limit", 1 << 30, "takes about 1841928600 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.limit)
			if tc.limit != math.MaxInt64 && checkMemory("s3://m/model.onnx", data, 0.2) == nil {
				t.Fatalf("a model of %d bytes in one file fits under %d: the case shows nothing", data, tc.limit)
			}
			err := checkStreamedMemory("s3://m/model.onnx", 1<<20, 64<<20, data, 0.2)
			if tc.say == "" {
				if err != nil {
					t.Errorf("error = %v, want none", err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != pipeline.ExitBadInput || e.Reason != "InsufficientMemory" || !strings.Contains(err.Error(), tc.say) || !strings.Contains(err.Error(), "past the memory limit of 1073741824 bytes") {
				t.Errorf("error = %v, want exit %d, reason InsufficientMemory, saying %q and naming the limit", err, pipeline.ExitBadInput, tc.say)
			}
		})
	}
}

func TestKeptFraction(t *testing.T) {
	q := func(m v1alpha1.QuantizeMethod, bits int32) v1alpha1.StageBody {
		return v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: m, Bits: bits}}
	}
	for _, tc := range []struct {
		stage v1alpha1.StageBody
		want  float64
	}{
		{q(v1alpha1.QuantizeWeightOnly, 4), 0.2},
		{q(v1alpha1.QuantizeWeightOnly, 8), 0.3},
		{q(v1alpha1.QuantizeDynamic, 8), 0.3},
		{q(v1alpha1.QuantizeFP16, 0), 0.5},
		{v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{}}, 1},
	} {
		if got := keptFraction(tc.stage); got != tc.want {
			t.Errorf("keptFraction(%+v) = %v, want %v", tc.stage, got, tc.want)
		}
	}
}
