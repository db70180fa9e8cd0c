package onnx

import (
	"errors"
	"fmt"
)

// ErrReshapeCount is wrapped by ReshapeDims' error when the target shape
// holds another number of elements than the input.
var ErrReshapeCount = errors.New("element count differs")

// ReshapeDims resolves a Reshape target shape against the input's dims as
// the operator does: 0 copies the input's dimension at the same index
// (unless allowZero, when it is a zero dimension), and one -1 takes what is
// left. A second -1, any other negative value, a 0 past the input's rank
// or a shape that does not fit the input's element count is an error.
func ReshapeDims(in, shape []int64, allowZero bool) ([]int64, error) {
	out := make([]int64, len(shape))
	infer, known := -1, int64(1)
	for i, d := range shape {
		switch {
		case d == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("Reshape shape %v copies dimension %d of %v", shape, i, in)
			}
			out[i] = in[i]
		case d == -1 && infer < 0:
			infer = i
			continue
		case d == -1:
			return nil, fmt.Errorf("Reshape shape %v has more than one -1", shape)
		case d < 0:
			return nil, fmt.Errorf("Reshape shape %v has a negative dimension", shape)
		default:
			out[i] = d
		}
		known *= out[i]
	}
	total := int64(NumElements(in))
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("Reshape shape %v does not fit %v: %w", shape, in, ErrReshapeCount)
		}
		out[infer] = total / known
	} else if known != total {
		return nil, fmt.Errorf("Reshape shape %v does not fit %v: %w", shape, in, ErrReshapeCount)
	}
	return out, nil
}
