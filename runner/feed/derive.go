package feed

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kompress/kompress/runner/onnx"
)

// A decoder exported with its KV cache (Hugging Face optimum's
// text-generation-with-past) takes, beside what a tokenizer gives
// (input_ids, attention_mask), position_ids and the past keys and values
// of every layer (past_key_values.N.key / .value, [batch, kv heads,
// past, head dim]). Calibration and evaluation run the first step of
// generation, so a dataset of tokenized text may leave them out: the
// past is fed empty (0 on its past dimension) and position_ids are
// derived from the attention mask as transformers' generate derives
// them. A dataset that has the arrays feeds them as it does any input.

// PositionIDs is the input derived from the attention mask.
const PositionIDs = "position_ids"

// isPast reports whether in is a decoder's past state: a float input
// named past... whose batch (dimension 0) and past length (one other
// dimension) are dynamic and every other dimension is fixed.
func isPast(in Input) bool {
	if !strings.HasPrefix(in.Name, "past") || !onnx.IsFloat(in.DType) || len(in.Dims) < 3 || in.Dims[0] >= 0 {
		return false
	}
	return pastAxis(in) > 0
}

// pastAxis is the one dynamic dimension of in after the batch, or -1.
func pastAxis(in Input) int {
	axis := -1
	for i, d := range in.Dims[1:] {
		if d < 0 {
			if axis >= 0 {
				return -1
			}
			axis = i + 1
		}
	}
	return axis
}

// derivable reports whether in may be left out of a dataset.
func derivable(in Input) bool {
	return isPast(in) || (in.Name == PositionIDs && onnx.IsInteger(in.DType) && len(in.Dims) == 2)
}

// emptyPast is n samples of in with no past: zero-sized.
func emptyPast(in Input, n int) fitted {
	dims := slices.Clone(in.Dims)
	dims[0], dims[pastAxis(in)] = int64(n), 0
	return fitted{array: fmt.Sprintf("an empty past for %s (no array %q)", in.Name, in.Name), t: &onnx.Tensor{DType: onnx.Float, Dims: dims, Data: []float32{}}}
}

// positionIDs derives position_ids [n, seq] from the attention mask as
// transformers' generate does (the running count of attended tokens
// less one, 1 where the mask is 0: left padding shifts the positions),
// or 0..seq-1 for every sample when the model has no mask input.
func positionIDs(mask *onnx.Tensor, ids *onnx.Tensor) (fitted, error) {
	src := ids
	if mask != nil {
		src = mask
	}
	if len(src.Dims) != 2 {
		return fitted{}, fmt.Errorf("no array %q, and it cannot be derived from %v-shaped token ids or attention mask: give position_ids [samples, sequence]", PositionIDs, src.Dims)
	}
	n, seq := int(src.Dims[0]), int(src.Dims[1])
	pos := make([]int64, n*seq)
	var m []int64
	if mask != nil {
		c, err := convert(mask, onnx.Int64)
		if err != nil {
			return fitted{}, err
		}
		m = c.Data.([]int64)
	}
	for s := range n {
		count := int64(0)
		for j := range seq {
			i := s*seq + j
			switch {
			case m == nil:
				pos[i] = int64(j)
			case m[i] == 0:
				pos[i] = 1
			default:
				pos[i], count = count, count+1
			}
		}
	}
	from := "attention_mask"
	if mask == nil {
		from = "the token count"
	}
	return fitted{array: fmt.Sprintf("position_ids derived from %s", from), t: onnx.NewTensor([]int64{int64(n), int64(seq)}, pos)}, nil
}

// deriveMissing fills the inputs fitArrays left out (missing[i]) from
// the fitted ones: the token ids (input_ids, or the first input with
// samples) give the number of samples.
func deriveMissing(ins []Input, out []fitted, missing []bool) error {
	var ids, mask *onnx.Tensor
	for i, in := range ins {
		switch {
		case missing[i]:
		case in.Name == "attention_mask":
			mask = out[i].t
		case ids == nil || in.Name == "input_ids":
			if len(out[i].t.Dims) > 0 {
				ids = out[i].t
			}
		}
	}
	if ids == nil {
		ids = mask
	}
	for i, in := range ins {
		if !missing[i] {
			continue
		}
		if ids == nil {
			return fmt.Errorf("no array %q, and no other array gives the samples it could be derived for", in.Name)
		}
		if isPast(in) {
			out[i] = emptyPast(in, int(ids.Dims[0]))
			continue
		}
		f, err := positionIDs(mask, ids)
		if err != nil {
			return err
		}
		out[i] = f
	}
	return nil
}
