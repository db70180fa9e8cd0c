package runner

import (
	"errors"
	"math"
	"runtime/debug"
	"strings"
	"testing"

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
		{"under the limit", 1 << 30, 300 << 20, ""},
		{"past the limit", 1 << 30, 400 << 20, "past the memory limit of 1073741824 bytes (GOMEMLIMIT, set from the container's memory limit): raise the stage's resources.limits.memory to at least 1398101334"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetMemoryLimit(tc.limit)
			err := checkMemory("s3://m/model.onnx", tc.size)
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
