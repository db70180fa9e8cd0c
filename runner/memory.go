package runner

import (
	"fmt"
	"math"
	"runtime/debug"

	"github.com/kompress/kompress/pipeline"
)

// modelCopies is how many times its bytes a model costs the runner when
// it transforms it in memory: the bytes read, the parsed model (every
// tensor copied out of the bytes), and the result serialized to be
// published.
const modelCopies = 3

// checkMemory fails at once, before reading anything, when a model of
// size bytes cannot be transformed in memory under the process's memory
// limit (cmd/kompress sets it from the container's limit; GOMEMLIMIT
// otherwise): past the limit the Go runtime would collect without end
// and the kernel kill the pod mid-write. A retry cannot help (exit code
// of bad input, reason InsufficientMemory). No limit, no check.
func checkMemory(uri string, size int64) error {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 || size <= 0 || size*modelCopies <= limit {
		return nil
	}
	return &Error{Code: pipeline.ExitBadInput, Reason: "InsufficientMemory", Err: fmt.Errorf("%s is %d bytes: transforming it in memory takes about %d (%dx: read, parsed, written), past the memory limit of %d bytes (GOMEMLIMIT, set from the container's memory limit): raise the stage's resources.limits.memory to at least %d",
		uri, size, size*modelCopies, modelCopies, limit, size*modelCopies*10/9+1)}
}
