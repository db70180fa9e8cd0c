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
//
// Products of dims are checked (CountElements): input dims or a target
// shape whose dims multiply past MaxElements are refused as ErrInvalid
// (a crafted target such as [3, 6148914691236517206] wraps around to the
// input's 2 elements in unchecked int64 arithmetic).
func ReshapeDims(in, shape []int64, allowZero bool) ([]int64, error) {
	n, err := CountElements(in)
	if err != nil {
		return nil, invalidf("Reshape input dims %v: %w", in, err)
	}
	total := int64(n)
	out := make([]int64, len(shape))
	known := make([]int64, 0, len(shape)) // the dims other than -1
	infer := -1
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
		known = append(known, out[i])
	}
	k, err := CountElements(known)
	if err != nil {
		return nil, invalidf("Reshape shape %v of %v: %w", shape, in, err)
	}
	if infer >= 0 {
		if k == 0 || total%int64(k) != 0 {
			return nil, fmt.Errorf("Reshape shape %v does not fit %v: %w", shape, in, ErrReshapeCount)
		}
		out[infer] = total / int64(k)
	} else if int64(k) != total {
		return nil, fmt.Errorf("Reshape shape %v does not fit %v: %w", shape, in, ErrReshapeCount)
	}
	return out, nil
}
