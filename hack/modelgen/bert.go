package modelgen

import (
	"fmt"
	"math/rand/v2"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// BERTConfig sizes a BERT-style encoder. The zero value of a field takes
// the default of SmallBERT.
type BERTConfig struct {
	// Vocab is the number of token ids; MaxPositions the longest sequence.
	Vocab, MaxPositions int
	// Hidden is the model width, Heads the attention heads (Hidden must
	// be a multiple), Intermediate the feed-forward width (4*Hidden).
	Hidden, Heads, Intermediate int
	// Layers is the number of encoder layers.
	Layers int
	// Seed draws every weight.
	Seed uint64
}

// SmallBERT is small enough for unit tests: 2 layers, hidden 64, 4 heads,
// 1,000 token ids, sequences up to 64 (about 0.2 M parameters).
var SmallBERT = BERTConfig{Vocab: 1000, MaxPositions: 64, Hidden: 64, Heads: 4, Layers: 2, Seed: 1}

// BERTSize scales SmallBERT for bigger runs: size 1 is SmallBERT, size n
// has n times the width (and heads) and layers; size 12 is about BERT-base
// (hidden 768, 12 layers; the vocabulary stays small).
func BERTSize(n int) BERTConfig {
	c := SmallBERT
	c.Hidden, c.Heads, c.Layers = 64*n, 4*n, 2*n
	if n >= 6 {
		c.Heads, c.Layers = 12, 12
	}
	c.MaxPositions = 128
	return c
}

func (c BERTConfig) withDefaults() BERTConfig {
	d := SmallBERT
	if c.Vocab > 0 {
		d.Vocab = c.Vocab
	}
	if c.MaxPositions > 0 {
		d.MaxPositions = c.MaxPositions
	}
	if c.Hidden > 0 {
		d.Hidden = c.Hidden
	}
	if c.Heads > 0 {
		d.Heads = c.Heads
	}
	if c.Layers > 0 {
		d.Layers = c.Layers
	}
	d.Intermediate = c.Intermediate
	if d.Intermediate == 0 {
		d.Intermediate = 4 * d.Hidden
	}
	d.Seed = c.Seed
	return d
}

// BERT input and output names, as Hugging Face's exports name them.
const (
	InputIDs        = "input_ids"
	AttentionMask   = "attention_mask"
	TokenTypeIDs    = "token_type_ids"
	LastHiddenState = "last_hidden_state"
)

// BERT builds a BERT-style encoder at opset 17: inputs input_ids,
// attention_mask and token_type_ids (int64 [batch, seq]); word, position
// and token-type embeddings (Gather) summed and layer-normalized; Layers
// post-norm encoder layers (MatMul/Add attention with Softmax, GELU by
// Erf); output last_hidden_state [batch, seq, hidden].
func BERT(cfg BERTConfig) *onnx.Model {
	c := cfg.withDefaults()
	b := New(fmt.Sprintf("bert-h%d-l%d", c.Hidden, c.Layers), c.Seed)
	ids := b.Input(InputIDs, onnx.Int64, "batch", "sequence")
	mask := b.Input(AttentionMask, onnx.Int64, "batch", "sequence")
	types := b.Input(TokenTypeIDs, onnx.Int64, "batch", "sequence")

	emb := b.Scope("embeddings")
	// Positions 0..seq-1 from the ids' shape.
	seq := emb.Op("Gather", []string{emb.Op("Shape", []string{ids}), emb.Const("seq_axis", onnx.NewTensor([]int64{}, []int64{1}))})
	pos := emb.Op("Range", []string{emb.Const("start", onnx.NewTensor([]int64{}, []int64{0})), seq, emb.Const("step", onnx.NewTensor([]int64{}, []int64{1}))})
	pos = emb.Op("Unsqueeze", []string{pos, emb.Ints("pos_axes", 0)})
	x := emb.Op("Add", []string{emb.Embedding(ids, c.Vocab, c.Hidden, "word_embeddings"), emb.Embedding(types, 2, c.Hidden, "token_type_embeddings")})
	x = emb.Op("Add", []string{x, emb.Embedding(pos, c.MaxPositions, c.Hidden, "position_embeddings")})
	x = emb.LayerNorm(x, c.Hidden, "LayerNorm")

	bias := b.Scope("extended_attention_mask").AttentionMask(mask)
	enc := b.Scope("encoder")
	for i := range c.Layers {
		x = enc.EncoderLayer(x, bias, c.Hidden, c.Heads, c.Intermediate, fmt.Sprintf("layer.%d", i))
	}
	b.Output(x, LastHiddenState, onnx.Float, "batch", "sequence", c.Hidden)
	return b.Model(17)
}

// BERTTokens makes n samples of seq tokens for a BERT of cfg, as a
// tokenizer would: ids of a [CLS]-like token 1, then random ids, then
// padding 0 after a random length (at least a quarter of seq), the mask
// 1 over the tokens, token types 0 for a first segment and 1 for the
// second. The arrays are named by the model's inputs, int64 [n, seq].
func BERTTokens(cfg BERTConfig, n, seq int, seed uint64) []dataset.Array {
	c := cfg.withDefaults()
	if seq > c.MaxPositions {
		panic(fmt.Sprintf("modelgen: sequence %d is longer than MaxPositions %d", seq, c.MaxPositions))
	}
	r := rand.New(rand.NewPCG(seed, 0x746f6b73))
	ids := make([]int64, n*seq)
	mask := make([]int64, n*seq)
	types := make([]int64, n*seq)
	for s := range n {
		length := seq/4 + r.IntN(seq-seq/4+1)
		split := 1 + r.IntN(length)
		for t := range length {
			i := s*seq + t
			ids[i], mask[i] = int64(2+r.IntN(c.Vocab-2)), 1
			if t == 0 {
				ids[i] = 1
			}
			if t >= split {
				types[i] = 1
			}
		}
	}
	shape := []int{n, seq}
	return []dataset.Array{
		{Name: InputIDs, Shape: shape, Data: ids},
		{Name: AttentionMask, Shape: shape, Data: mask},
		{Name: TokenTypeIDs, Shape: shape, Data: types},
	}
}
