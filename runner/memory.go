package runner

import (
	"fmt"
	"math"
	"runtime/debug"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// modelCopies is how many times its bytes a model costs the runner when
// it transforms it in memory: the bytes read, the parsed model (every
// tensor copied out of the bytes), and the result serialized to be
// published.
const modelCopies = 3

// runtimeBytes is what the runner takes besides the models: the Go
// runtime, ONNX Runtime's library, its sessions and arenas (an estimate:
// TestStageUnderCgroupMemoryLimit measures a stage whole under a limit).
const runtimeBytes = 64 << 20

// checkMemory fails at once, before reading anything, when a model of
// size bytes cannot be transformed in memory under the process's memory
// limit (cmd/kompress sets it from the container's limit; GOMEMLIMIT
// otherwise): past the limit the Go runtime would collect without end
// and the kernel kill the pod (ONNX Runtime's memory is not the Go
// runtime's to collect). It counts the model modelCopies times, then
// ONNX Runtime measuring the output against the source (the source's
// bytes, and the output's: kept of them, see keptFraction), and the
// runtimes. A retry cannot help (exit code of bad input, reason
// InsufficientMemory). No limit, no check.
func checkMemory(uri string, size int64, kept float64) error {
	limit := debug.SetMemoryLimit(-1)
	need := size*modelCopies + size + int64(float64(size)*kept) + runtimeBytes
	if limit == math.MaxInt64 || size <= 0 || need <= limit {
		return nil
	}
	return &Error{Code: pipeline.ExitBadInput, Reason: "InsufficientMemory", Err: fmt.Errorf("%s is %d bytes: transforming it in memory takes about %d (%dx: read, parsed, written; ONNX Runtime measuring it against the source; the runtimes), past the memory limit of %d bytes (%s): raise the stage's resources.limits.memory to at least %d",
		uri, size, need, modelCopies, limit, MemoryLimitFrom, need*10/9+1)}
}

// streamedTensors is how many weights a streamed transform holds at once,
// at most: the one being changed, its result, and the ones read ahead
// (quantize's prefetch).
const streamedTensors = 4

// checkStreamedMemory is checkMemory for a model whose weights stay in
// external data: it is transformed tensor by tensor, so the transform
// needs its structure (header bytes, parsed and written back), a few of
// its largest tensors, and the weights the stage keeps until they are
// written (kept, a fraction of dataBytes: see keptFraction); then ONNX
// Runtime, which evaluates the output against the source, holds both
// (the source's weights, about dataBytes, and the output's), besides the
// runtimes themselves (runtimeBytes). Below that,
// streaming cannot help either: the stage fails before reading a weight.
func checkStreamedMemory(uri string, header, largest, dataBytes int64, kept float64) error {
	limit := debug.SetMemoryLimit(-1)
	keptBytes := int64(float64(dataBytes) * kept)
	need := header*modelCopies + largest*streamedTensors + keptBytes + dataBytes + keptBytes + runtimeBytes
	if limit == math.MaxInt64 || need <= limit {
		return nil
	}
	return &Error{Code: pipeline.ExitBadInput, Reason: "InsufficientMemory", Err: fmt.Errorf("%s streams %d bytes of external data tensor by tensor: that takes about %d bytes (its %d-byte structure %dx, its largest tensor of %d bytes %dx, %d bytes of changed weights kept until written, ONNX Runtime holding the source and the output to measure them, and the runtimes), past the memory limit of %d bytes (%s): raise the stage's resources.limits.memory to at least %d",
		uri, dataBytes, need, header, modelCopies, largest, streamedTensors, keptBytes, limit, MemoryLimitFrom, need*10/9+1)}
}

// MemoryLimitFrom says where the memory limit came from, for the
// messages that name it; cmd/kompress sets it.
var MemoryLimitFrom = "GOMEMLIMIT, set from the container's memory limit"

// keptFraction is the share of a streamed model's weight bytes a stage
// holds until it writes them: quantized weights at their new size (4-bit
// blocks an eighth plus their scales, 8 bits a quarter plus scales,
// float16 half); anything else (pruning, distillation) keeps them whole.
func keptFraction(s v1alpha1.StageBody) float64 {
	if s.Type != v1alpha1.StageTypeQuantize || s.Quantize == nil {
		return 1
	}
	switch q := s.Quantize; {
	case q.Method == v1alpha1.QuantizeFP16:
		return 0.5
	case q.Method == v1alpha1.QuantizeWeightOnly && q.Bits == 4:
		return 0.2
	default:
		return 0.3
	}
}
