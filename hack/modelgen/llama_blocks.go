package modelgen

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
)

// Blocks of a LLaMA-style decoder, written the way PyTorch's exporter
// writes Hugging Face's modeling_llama: no fused operators, so every
// runtime and every compression pass sees plain ONNX.

// maskedValue is the additive bias of a masked score: float32's lowest
// value, as Hugging Face's masks use (torch.finfo(dtype).min).
const maskedValue = -math.MaxFloat32

// rotary holds the cos and sin of each position's rotation, [batch, 1,
// sequence, head dim]: broadcast over the heads.
type rotary struct{ cos, sin string }

// Rotary gathers the cos and sin caches ([MaxPositions, head dim], the
// frequencies θ^(-2i/d) repeated over both halves, as LlamaRotaryEmbedding
// builds them) by position_ids.
func (b *Builder) Rotary(pos string, c LlamaConfig) rotary {
	dh := c.headDim()
	cos := make([]float32, c.MaxPositions*dh)
	sin := make([]float32, len(cos))
	for p := range c.MaxPositions {
		for i := range dh {
			f := float64(p) * math.Pow(c.RopeTheta, -float64(2*(i%(dh/2)))/float64(dh))
			cos[p*dh+i], sin[p*dh+i] = float32(math.Cos(f)), float32(math.Sin(f))
		}
	}
	s := b.Scope("model.rotary_emb")
	dims := []int64{int64(c.MaxPositions), int64(dh)}
	gather := func(name string, cache []float32) string {
		t := s.Op("Gather", []string{s.Const(name, onnx.NewTensor(dims, cache)), pos})
		return s.Op("Unsqueeze", []string{t, s.Ints("head_axis", 1)})
	}
	return rotary{cos: gather("cos_cached", cos), sin: gather("sin_cached", sin)}
}

// CausalPastMask is the additive bias [batch, 1, sequence, past +
// sequence] of the attention scores: query i (at position past+i) sees
// the keys up to its own position whose attention_mask is 1. The past
// length is the mask's length less the sequence's.
func (b *Builder) CausalPastMask(ids, mask string) string {
	s := b.Scope("causal_mask")
	axis1 := s.Const("axis1", onnx.NewTensor([]int64{}, []int64{1}))
	seq := s.Op("Gather", []string{s.Op("Shape", []string{ids}), axis1})
	total := s.Op("Gather", []string{s.Op("Shape", []string{mask}), axis1})
	one := s.Const("one", onnx.NewTensor([]int64{}, []int64{1}))
	keys := s.Op("Range", []string{s.Const("zero", onnx.NewTensor([]int64{}, []int64{0})), total, one})
	queries := s.Op("Range", []string{s.Op("Sub", []string{total, seq}), total, one})
	later := s.Op("Greater", []string{s.Op("Unsqueeze", []string{keys, s.Ints("key_axes", 0)}), s.Op("Unsqueeze", []string{queries, s.Ints("query_axes", 1)})})
	padding := s.Op("Equal", []string{mask, s.Const("padded", onnx.NewTensor([]int64{}, []int64{0}))})
	padding = s.Op("Unsqueeze", []string{padding, s.Ints("mask_axes", 1, 2)})
	blocked := s.Op("Or", []string{later, padding})
	return s.Op("Where", []string{blocked, s.Scalar("min", maskedValue), s.Scalar("zero_bias", 0)})
}

// LlamaBlock is decoder block i: x + attention(RMSNorm(x)), then +
// SwiGLU(RMSNorm(x)). It returns the block's output and the present keys
// and values. The output projections of both residual branches are
// scaled by 1/sqrt(2*layers), as DecoderBlock's.
func (b *Builder) LlamaBlock(x, bias string, rope rotary, c LlamaConfig, outliers []int, i int) (out, key, value string) {
	s := b.Scope(fmt.Sprintf("layers.%d", i))
	residual := 1 / math.Sqrt(2*float64(c.Layers))
	a, key, value := s.GroupedQueryAttention(s.RMSNorm(x, c.Hidden, outliers, c.OutlierGain, "input_layernorm"), bias, rope, c, residual, i)
	x = s.Op("Add", []string{x, a})
	h := s.SwiGLU(s.RMSNorm(x, c.Hidden, outliers, c.OutlierGain, "post_attention_layernorm"), c.Hidden, c.Intermediate, residual)
	return s.Op("Add", []string{x, h}), key, value
}

// RMSNorm is x / sqrt(mean(x²) + 1e-5) · weight, as the exporter writes
// LlamaRMSNorm, with the outlier channels' gains as OutlierLayerNorm's.
func (b *Builder) RMSNorm(x string, hidden int, outliers []int, gain float64, name string) string {
	s := b.Scope(name)
	w := s.Const("weight", onnx.NewTensor([]int64{int64(hidden)}, s.outlierGains(hidden, outliers, gain)))
	variance := s.Op("ReduceMean", []string{s.Op("Pow", []string{x, s.Scalar("two", 2)})}, onnx.AttrInts("axes", -1), onnx.AttrInt("keepdims", 1))
	rms := s.Op("Sqrt", []string{s.Op("Add", []string{variance, s.Scalar("epsilon", 1e-5)})})
	normed := s.Op("Mul", []string{x, s.Op("Div", []string{s.Scalar("one", 1), rms})})
	return s.Op("Mul", []string{w, normed})
}

// NoBiasLinear is x·W with W [in, out] of standard deviation std.
func (b *Builder) NoBiasLinear(x string, in, out int, std float64, name string) string {
	w := b.Scope(name).Param("weight", Laplace(std), int64(in), int64(out))
	return b.Op("MatMul", []string{x, w})
}

// GroupedQueryAttention is LlamaAttention over x [batch, seq, hidden]
// for layer i: q, k and v projections, rotary positions on q and k, the
// past keys and values of the layer's inputs concatenated before this
// step's (the present, returned), the key-value heads repeated to the
// query heads, scaled dot products plus the bias, Softmax, and o_proj
// scaled by residual.
func (b *Builder) GroupedQueryAttention(x, bias string, rope rotary, c LlamaConfig, residual float64, i int) (out, key, value string) {
	s := b.Scope("self_attn")
	dh := c.headDim()
	std := 1 / math.Sqrt(float64(c.Hidden))
	heads := func(t string, n int) string {
		t = s.Op("Reshape", []string{t, s.Ints("heads_shape", 0, 0, int64(n), int64(dh))})
		return s.Op("Transpose", []string{t}, onnx.AttrInts("perm", 0, 2, 1, 3)) // [batch, n, seq, dh]
	}
	q := s.applyRotary(heads(s.NoBiasLinear(x, c.Hidden, c.Heads*dh, std, "q_proj"), c.Heads), rope, dh)
	k := s.applyRotary(heads(s.NoBiasLinear(x, c.Hidden, c.KVHeads*dh, std, "k_proj"), c.KVHeads), rope, dh)
	v := heads(s.NoBiasLinear(x, c.Hidden, c.KVHeads*dh, std, "v_proj"), c.KVHeads)
	key = s.Op("Concat", []string{PastKey(i), k}, onnx.AttrInt("axis", 2))
	value = s.Op("Concat", []string{PastValue(i), v}, onnx.AttrInt("axis", 2))
	kt := s.Op("Transpose", []string{s.repeatKV(key, c)}, onnx.AttrInts("perm", 0, 1, 3, 2))
	scores := s.Op("Div", []string{s.Op("MatMul", []string{q, kt}), s.Scalar("scale", float32(math.Sqrt(float64(dh))))})
	p := s.Op("Softmax", []string{s.Op("Add", []string{scores, bias})}, onnx.AttrInt("axis", -1))
	ctx := s.Op("Transpose", []string{s.Op("MatMul", []string{p, s.repeatKV(value, c)})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	ctx = s.Op("Reshape", []string{ctx, s.Ints("merge_shape", 0, 0, int64(c.Hidden))})
	return s.NoBiasLinear(ctx, c.Hidden, c.Hidden, residual*std, "o_proj"), key, value
}

// applyRotary is t·cos + rotate_half(t)·sin, rotate_half(t) being the
// concatenation of the second half of the head dims negated and the
// first half.
func (b *Builder) applyRotary(t string, rope rotary, dh int) string {
	axis := b.Ints("last_axis", -1)
	first := b.Op("Slice", []string{t, b.Ints("start", 0), b.Ints("half", int64(dh/2)), axis})
	second := b.Op("Slice", []string{t, b.Ints("half", int64(dh/2)), b.Ints("end", math.MaxInt64), axis})
	rotated := b.Op("Concat", []string{b.Op("Neg", []string{second}), first}, onnx.AttrInt("axis", -1))
	return b.Op("Add", []string{b.Op("Mul", []string{t, rope.cos}), b.Op("Mul", []string{rotated, rope.sin})})
}

// repeatKV repeats each of the key-value heads of t [batch, kv, len, dh]
// Heads/KVHeads times (repeat_kv: Unsqueeze, Expand, Reshape).
func (b *Builder) repeatKV(t string, c LlamaConfig) string {
	n := c.Heads / c.KVHeads
	if n == 1 {
		return t
	}
	t = b.Op("Expand", []string{b.Op("Unsqueeze", []string{t, b.Ints("repeat_axis", 2)}), b.Ints("repeats", 1, 1, int64(n), 1, 1)})
	return b.Op("Reshape", []string{t, b.Ints("repeated_shape", 0, int64(c.Heads), -1, int64(c.headDim()))})
}

// SwiGLU is down(silu(gate(x)) · up(x)), SiLU as Sigmoid and Mul; down
// has its weights scaled by residual.
func (b *Builder) SwiGLU(x string, hidden, inner int, residual float64) string {
	s := b.Scope("mlp")
	std := 1 / math.Sqrt(float64(hidden))
	gate := s.NoBiasLinear(x, hidden, inner, std, "gate_proj")
	up := s.NoBiasLinear(x, hidden, inner, std, "up_proj")
	act := s.Op("Mul", []string{gate, s.Op("Sigmoid", []string{gate})})
	return s.NoBiasLinear(s.Op("Mul", []string{act, up}), inner, hidden, residual/math.Sqrt(float64(inner)), "down_proj")
}
