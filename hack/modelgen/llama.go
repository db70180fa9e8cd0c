package modelgen

import (
	"fmt"
	"math"
	"slices"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// LlamaConfig sizes a LLaMA-style decoder (LLaMA, Mistral, Qwen2,
// SmolLM: RMSNorm, SwiGLU, rotary positions, grouped-query attention, no
// biases). The zero value of a field takes SmallLlama's.
type LlamaConfig struct {
	// Vocab is the number of token ids; MaxPositions the length of the
	// rotary caches (the longest past plus sequence).
	Vocab, MaxPositions int
	// Hidden is the model width; Heads the query heads and KVHeads the
	// key-value heads (Heads a multiple of KVHeads, Hidden of Heads);
	// Intermediate the SwiGLU width.
	Hidden, Heads, KVHeads, Intermediate int
	// Layers is the number of decoder blocks.
	Layers int
	// Untied gives the language-model head its own [hidden, vocab]
	// weight; by default it reads the token embedding through a
	// Transpose, as an export of tied weights (SmolLM, Qwen2-0.5B) does.
	Untied bool
	// Outliers channels of every RMSNorm gain are OutlierGain times the
	// others (-1: none), as DecoderConfig's.
	Outliers    int
	OutlierGain float64
	// RopeTheta is the rotary base (10,000 when zero).
	RopeTheta float64
	// Seed draws every weight.
	Seed uint64
}

// SmallLlama is small enough for unit tests (2.0 MB, 500,352 parameters): 2 blocks of hidden
// 128, 4 query heads sharing 2 key-value heads of 32, SwiGLU width 352,
// 1,024 token ids, 256 positions, tied head.
var SmallLlama = LlamaConfig{Vocab: 1024, MaxPositions: 256, Hidden: 128, Heads: 4, KVHeads: 2, Intermediate: 352, Layers: 2, Seed: 1}

// Llama135M has SmolLM-135M's shape: 30 blocks of hidden 576, 9 query
// heads sharing 3 key-value heads of 64, SwiGLU width 1,536, 49,152
// token ids, 2,048 positions, tied head: 134,515,008 parameters.
var Llama135M = LlamaConfig{Vocab: 49152, MaxPositions: 2048, Hidden: 576, Heads: 9, KVHeads: 3, Intermediate: 1536, Layers: 30, Seed: 1}

// Names of a with-past export's inputs and outputs (optimum's
// text-generation-with-past task).
const (
	PositionIDs = "position_ids"
	Logits      = "logits"
)

// PastKey, PastValue, PresentKey and PresentValue name layer i's cache
// inputs and outputs.
func PastKey(i int) string      { return fmt.Sprintf("past_key_values.%d.key", i) }
func PastValue(i int) string    { return fmt.Sprintf("past_key_values.%d.value", i) }
func PresentKey(i int) string   { return fmt.Sprintf("present.%d.key", i) }
func PresentValue(i int) string { return fmt.Sprintf("present.%d.value", i) }

func (c LlamaConfig) withDefaults() LlamaConfig {
	d := SmallLlama
	for _, f := range []struct{ dst, src *int }{
		{&d.Vocab, &c.Vocab}, {&d.MaxPositions, &c.MaxPositions}, {&d.Hidden, &c.Hidden},
		{&d.Heads, &c.Heads}, {&d.KVHeads, &c.KVHeads}, {&d.Intermediate, &c.Intermediate}, {&d.Layers, &c.Layers},
	} {
		if *f.src > 0 {
			*f.dst = *f.src
		}
	}
	d.Untied, d.Seed = c.Untied, c.Seed
	d.Outliers, d.OutlierGain, d.RopeTheta = c.Outliers, c.OutlierGain, c.RopeTheta
	if d.Outliers == 0 {
		d.Outliers = min(6, max(1, d.Hidden/128))
	}
	if d.OutlierGain == 0 {
		d.OutlierGain = 20
	}
	if d.RopeTheta == 0 {
		d.RopeTheta = 10000
	}
	return d
}

func (c LlamaConfig) headDim() int { return c.Hidden / c.Heads }

// Params is the number of parameters of a LLaMA decoder of c (the rotary
// caches are not parameters).
func (c LlamaConfig) Params() int64 {
	c = c.withDefaults()
	h, i, kv := int64(c.Hidden), int64(c.Intermediate), int64(c.KVHeads*c.headDim())
	block := 2*h + 2*h*h + 2*h*kv + 3*h*i
	p := int64(c.Vocab)*h + int64(c.Layers)*block + h
	if c.Untied {
		p += int64(c.Vocab) * h
	}
	return p
}

// Llama builds a LLaMA-style decoder at opset 17 the way optimum exports
// one for text-generation-with-past: inputs input_ids, attention_mask
// ([batch, past + sequence]), position_ids (int64) and, per layer,
// past_key_values.N.key and .value (float32 [batch, kv heads, past,
// head dim]; past is 0 on the first step); outputs logits [batch,
// sequence, vocab] and present.N.key and .value (the past with this
// step's keys and values appended). Blocks are pre-norm: RMSNorm written
// as primitives (Pow, ReduceMean, Add, Sqrt, Div, Mul), rotary positions
// from cos and sin caches gathered by position_ids (rotate_half by
// Slice, Neg, Concat), grouped-query attention (Expand and Reshape repeat
// the key-value heads), a SwiGLU feed-forward (gate·sigmoid(gate)·up),
// linear layers MatMul without bias, weights [in, out].
func Llama(cfg LlamaConfig) *onnx.Model {
	c := cfg.withDefaults()
	if c.Hidden%c.Heads != 0 || c.Heads%c.KVHeads != 0 || c.headDim()%2 != 0 {
		panic(fmt.Sprintf("modelgen: hidden %d, %d heads, %d key-value heads: want hidden a multiple of heads, heads of key-value heads, an even head size", c.Hidden, c.Heads, c.KVHeads))
	}
	b := New(fmt.Sprintf("llama-h%d-l%d", c.Hidden, c.Layers), c.Seed)
	ids := b.Input(InputIDs, onnx.Int64, "batch_size", "sequence_length")
	mask := b.Input(AttentionMask, onnx.Int64, "batch_size", "past_sequence_length + sequence_length")
	pos := b.Input(PositionIDs, onnx.Int64, "batch_size", "sequence_length")
	dh := c.headDim()
	for i := range c.Layers {
		for _, name := range []string{PastKey(i), PastValue(i)} {
			b.Input(name, onnx.Float, "batch_size", c.KVHeads, "past_sequence_length", dh)
		}
	}
	outliers := b.Rand().Perm(c.Hidden)[:max(c.Outliers, 0)]
	model := b.Scope("model")
	embed := model.Scope("embed_tokens").Param("weight", Normal(0, 0.5), int64(c.Vocab), int64(c.Hidden))
	x := b.Op("Gather", []string{embed, ids})
	rope := b.Rotary(pos, c)
	bias := b.CausalPastMask(ids, mask)
	present := make([]string, 0, 2*c.Layers)
	for i := range c.Layers {
		var k, v string
		x, k, v = model.LlamaBlock(x, bias, rope, c, outliers, i)
		present = append(present, k, v)
	}
	x = model.RMSNorm(x, c.Hidden, outliers, c.OutlierGain, "norm")
	head := b.Op("Transpose", []string{embed}, onnx.AttrInts("perm", 1, 0))
	if c.Untied {
		head = b.Scope("lm_head").Param("weight", Laplace(1/math.Sqrt(float64(c.Hidden))), int64(c.Hidden), int64(c.Vocab))
	}
	logits := b.Op("MatMul", []string{x, head})
	b.Output(logits, Logits, onnx.Float, "batch_size", "sequence_length", c.Vocab)
	for i := range c.Layers {
		b.Output(present[2*i], PresentKey(i), onnx.Float, "batch_size", c.KVHeads, "past_sequence_length + sequence_length", dh)
		b.Output(present[2*i+1], PresentValue(i), onnx.Float, "batch_size", c.KVHeads, "past_sequence_length + sequence_length", dh)
	}
	return b.Model(17)
}

// LlamaTokens makes n samples of seq token ids for a LLaMA decoder, as
// DecoderTokens does: input_ids and attention_mask (all ones), the arrays
// a tokenizer gives. position_ids and the empty past are left to the
// runner, which derives them.
func LlamaTokens(cfg LlamaConfig, n, seq int, seed uint64) []dataset.Array {
	c := cfg.withDefaults()
	if seq > c.MaxPositions {
		panic(fmt.Sprintf("modelgen: sequence %d is longer than MaxPositions %d", seq, c.MaxPositions))
	}
	return zipfTokens(c.Vocab, n, seq, seed)
}

// LlamaStep is the inputs of one step of a LLaMA decoder of cfg on one
// sequence: the token ids at positions start.., an attention mask of
// ones over past and sequence, and the past keys and values (by their
// present.* names: the outputs of the step before), or an empty past,
// zero-sized, when past is nil.
func LlamaStep(cfg LlamaConfig, ids []int64, start int, past map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	c := cfg.withDefaults()
	n := int64(len(ids))
	mask := make([]int64, start+len(ids))
	pos := make([]int64, n)
	for i := range mask {
		mask[i] = 1
	}
	for i := range pos {
		pos[i] = int64(start + i)
	}
	in := map[string]*onnx.Tensor{
		InputIDs:      onnx.NewTensor([]int64{1, n}, slices.Clone(ids)),
		AttentionMask: onnx.NewTensor([]int64{1, int64(len(mask))}, mask),
		PositionIDs:   onnx.NewTensor([]int64{1, n}, pos),
	}
	empty := onnx.NewTensor([]int64{1, int64(c.KVHeads), 0, int64(c.headDim())}, []float32{})
	for i := range c.Layers {
		in[PastKey(i)], in[PastValue(i)] = empty, empty
		if past != nil {
			in[PastKey(i)], in[PastValue(i)] = past[PresentKey(i)], past[PresentValue(i)]
		}
	}
	return in
}
