package quantize

import "github.com/kompress/kompress/runner/onnx"

// maxRotaryDim bounds the head size of the tables rotaryCache reads:
// a wider table is an embedding, not read to find out.
const maxRotaryDim = 512

// rotaryCache reports whether a 2-D table gathered by positions is a
// rotary embedding's cos or sin cache ([positions, head dim], as
// exports of LLaMA, Mistral, Qwen or GPT-NeoX before transformers 4.38
// hold them): exact values of the positions, which quantizing would
// turn into a rotation error on every query and key (16 levels at 4
// bits), for a table of a few hundred KB. Row 0 is all ones (cos 0) or
// all zeros (sin 0), and row 1 repeats its frequencies over both halves
// (rotate_half's cat(freqs, freqs)) or over adjacent pairs (GPT-J's
// interleaved form), within [-1, 1]: a learned embedding is never so.
func rotaryCache(c *constant) bool {
	d := c.dims()
	if len(d) != 2 || d[0] < 2 || d[1] < 2 || d[1]%2 != 0 || d[1] > maxRotaryDim || c.dtype() != onnx.Float {
		return false
	}
	t, err := c.tensor()
	if err != nil {
		return false
	}
	v, err := t.Float32s()
	if err != nil {
		return false
	}
	n := int(d[1])
	first, second := v[:n], v[n:2*n]
	if !allEqual(first, 0) && !allEqual(first, 1) {
		return false
	}
	halves, pairs := true, true
	for i, x := range second {
		if x < -1 || x > 1 {
			return false
		}
		halves = halves && (i >= n/2 || x == second[i+n/2])
		pairs = pairs && (i%2 == 1 || x == second[i+1])
	}
	return halves || pairs
}

func allEqual(v []float32, x float32) bool {
	for _, y := range v {
		if y != x {
			return false
		}
	}
	return true
}
