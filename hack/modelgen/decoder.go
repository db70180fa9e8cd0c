package modelgen

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// DecoderConfig sizes a GPT-2-style decoder. The zero value of a field
// takes the default of SmallDecoder.
type DecoderConfig struct {
	// Vocab is the number of token ids; MaxPositions the longest sequence.
	Vocab, MaxPositions int
	// Hidden is the model width, Heads the attention heads (Hidden must
	// be a multiple), Intermediate the feed-forward width (4*Hidden).
	Hidden, Heads, Intermediate int
	// Layers is the number of decoder blocks.
	Layers int
	// Outliers is the number of hidden channels whose layer-norm gains
	// are OutlierGain times the others' (-1: none), so the activations
	// every attention and feed-forward input layer reads carry a few
	// channels an order of magnitude above the rest, in the same
	// channels in every block, as trained LLMs' do (the outlier features
	// of LLM.int8() and SmoothQuant). Defaults: 6 channels (at least
	// one), gain 20: on GPT2Small's calibration tokens the largest
	// channel maximum of a layer input is 24.7x the median one
	// (SmoothQuant's report), at the low end of the 20-100x of GPT-2 and
	// LLaMA.
	Outliers    int
	OutlierGain float64
	// Seed draws every weight.
	Seed uint64
}

// SmallDecoder is small enough for unit tests: 2 blocks of hidden 64, 4
// heads, 512 token ids, sequences up to 64 (about 0.15 M parameters).
var SmallDecoder = DecoderConfig{Vocab: 512, MaxPositions: 64, Hidden: 64, Heads: 4, Layers: 2, Seed: 1}

// GPT2Small has GPT-2 small's shape: 12 blocks of hidden 768, 12 heads,
// 50,257 token ids, 1,024 positions: 124,439,808 parameters, the
// embedding shared with the (unexported) language-model head.
var GPT2Small = DecoderConfig{Vocab: 50257, MaxPositions: 1024, Hidden: 768, Heads: 12, Layers: 12, Seed: 1}

// Decoder1B is GPT-2 widened and deepened to 1.11 B parameters (20
// blocks of hidden 2048, 16 heads, 2,048 positions): 4.46 GB of float32
// weights, past protobuf's 2 GiB limit, so it is written with external
// data (DecoderExternal).
var Decoder1B = DecoderConfig{Vocab: 50257, MaxPositions: 2048, Hidden: 2048, Heads: 16, Layers: 20, Seed: 1}

func (c DecoderConfig) withDefaults() DecoderConfig {
	d := SmallDecoder
	for _, f := range []struct{ dst, src *int }{
		{&d.Vocab, &c.Vocab}, {&d.MaxPositions, &c.MaxPositions}, {&d.Hidden, &c.Hidden},
		{&d.Heads, &c.Heads}, {&d.Layers, &c.Layers},
	} {
		if *f.src > 0 {
			*f.dst = *f.src
		}
	}
	d.Intermediate = c.Intermediate
	if d.Intermediate == 0 {
		d.Intermediate = 4 * d.Hidden
	}
	d.Outliers, d.OutlierGain = c.Outliers, c.OutlierGain
	if d.Outliers == 0 {
		d.Outliers = min(6, max(1, d.Hidden/128))
	}
	if d.OutlierGain == 0 {
		d.OutlierGain = 20
	}
	d.Seed = c.Seed
	return d
}

// Params is the number of parameters of a decoder of c.
func (c DecoderConfig) Params() int64 {
	c = c.withDefaults()
	h, i := int64(c.Hidden), int64(c.Intermediate)
	block := 2*2*h + (h*3*h + 3*h) + (h*h + h) + (h*i + i) + (i*h + h)
	return int64(c.Vocab)*h + int64(c.MaxPositions)*h + int64(c.Layers)*block + 2*h
}

// Decoder builds a GPT-2-style decoder at opset 17, every weight inline:
// inputs input_ids and attention_mask (int64 [batch, sequence]); token
// and position embeddings (Gather); Layers pre-norm blocks of causal
// multi-head attention (one fused query-key-value MatMul, Split) and a
// feed-forward of GELU (tanh form, GPT-2's gelu_new); a final layer norm;
// output last_hidden_state [batch, sequence, hidden]. Linear weights are
// [in, out] (GPT-2's Conv1D), as the exporter writes them.
func Decoder(cfg DecoderConfig) *onnx.Model {
	m, _ := decoder(cfg, nil)
	return m
}

// DecoderExternal builds the same model with every weight of at least
// 1 KiB streamed to ext as it is drawn, in constant memory: the model's
// tensors refer to ext's file, which must sit beside the model file.
func DecoderExternal(cfg DecoderConfig, ext *onnx.ExternalWriter) (*onnx.Model, error) {
	return decoder(cfg, ext)
}

func decoder(cfg DecoderConfig, ext *onnx.ExternalWriter) (*onnx.Model, error) {
	c := cfg.withDefaults()
	if c.Hidden%c.Heads != 0 {
		panic(fmt.Sprintf("modelgen: hidden %d is not a multiple of %d heads", c.Hidden, c.Heads))
	}
	b := New(fmt.Sprintf("decoder-h%d-l%d", c.Hidden, c.Layers), c.Seed)
	if ext != nil {
		b.ExternalData(ext, 1024)
	}
	ids := b.Input(InputIDs, onnx.Int64, "batch", "sequence")
	mask := b.Input(AttentionMask, onnx.Int64, "batch", "sequence")
	// The outlier channels are the same in every block.
	outliers := b.Rand().Perm(c.Hidden)[:max(c.Outliers, 0)]

	seq := b.Op("Gather", []string{b.Op("Shape", []string{ids}), b.Const("seq_axis", onnx.NewTensor([]int64{}, []int64{1}))})
	pos := b.Op("Range", []string{b.Const("start", onnx.NewTensor([]int64{}, []int64{0})), seq, b.Const("step", onnx.NewTensor([]int64{}, []int64{1}))})
	x := b.Op("Add", []string{b.Embedding(ids, c.Vocab, c.Hidden, "wte"),
		b.Embedding(b.Op("Unsqueeze", []string{pos, b.Ints("pos_axes", 0)}), c.MaxPositions, c.Hidden, "wpe")})
	bias := b.Op("Add", []string{b.CausalMask(pos), b.AttentionMask(mask)}) // [batch, 1, seq, seq]

	for i := range c.Layers {
		x = b.DecoderBlock(x, bias, c, outliers, fmt.Sprintf("h.%d", i))
	}
	x = b.LayerNorm(x, c.Hidden, "ln_f")
	b.Output(x, LastHiddenState, onnx.Float, "batch", "sequence", c.Hidden)
	return b.Model(17), b.Err()
}

// CausalMask is the additive bias [seq, seq] that keeps each position
// from attending to later ones (-10000, GPT-2's masked_bias), from the
// positions 0..seq-1.
func (b *Builder) CausalMask(pos string) string {
	later := b.Op("Greater", []string{b.Op("Unsqueeze", []string{pos, b.Ints("key_axes", 0)}), b.Op("Unsqueeze", []string{pos, b.Ints("query_axes", 1)})})
	return b.Op("Where", []string{later, b.Scalar("masked_bias", -10000), b.Scalar("zero", 0)})
}

// DecoderBlock is a pre-norm GPT-2 block: x + attention(ln_1(x)), then
// + mlp(ln_2(x)). The output projections of both residual branches are
// scaled by 1/sqrt(2*layers), as GPT-2 initializes them, so the residual
// stream stays of order one through the depth.
func (b *Builder) DecoderBlock(x, bias string, c DecoderConfig, outliers []int, name string) string {
	s := b.Scope(name)
	residual := 1 / math.Sqrt(2*float64(c.Layers))
	a := s.CausalSelfAttention(s.OutlierLayerNorm(x, c.Hidden, outliers, c.OutlierGain, "ln_1"), bias, c.Hidden, c.Heads, residual, "attn")
	x = s.Op("Add", []string{x, a})
	mlp := s.Scope("mlp")
	h := mlp.Linear(s.OutlierLayerNorm(x, c.Hidden, outliers, c.OutlierGain, "ln_2"), c.Hidden, c.Intermediate, "c_fc")
	h = mlp.LinearStd(mlp.GELUTanh(h), c.Intermediate, c.Hidden, residual/math.Sqrt(float64(c.Intermediate)), "c_proj")
	return s.Op("Add", []string{x, h})
}

// OutlierLayerNorm is LayerNorm (epsilon 1e-5, GPT-2's) whose gains in
// the outlier channels are gain times larger, each by a factor in [0.5,
// 1) of it.
func (b *Builder) OutlierLayerNorm(x string, hidden int, outliers []int, gain float64, name string) string {
	s := b.Scope(name)
	gn := s.Const("weight", onnx.NewTensor([]int64{int64(hidden)}, s.outlierGains(hidden, outliers, gain)))
	beta := s.Param("bias", Normal(0, 0.05), int64(hidden))
	return s.Op("LayerNormalization", []string{x, gn, beta}, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-5))
}

// outlierGains draws a norm's gains around one, those of the outlier
// channels gain times larger, each by a factor in [0.5, 1) of it.
func (b *Builder) outlierGains(hidden int, outliers []int, gain float64) []float32 {
	g := make([]float32, hidden)
	d := Normal(1, 0.1)
	for i := range g {
		g[i] = d.draw(b.g.rand)
	}
	for _, c := range outliers {
		g[c] *= float32(gain * (0.5 + 0.5*b.g.rand.Float64()))
	}
	return g
}

// CausalSelfAttention is GPT-2's attention over x [batch, seq, hidden]:
// one MatMul to queries, keys and values (c_attn, [hidden, 3*hidden]),
// Split, scaled dot products plus the additive bias (causal and
// padding), Softmax, and the output projection c_proj whose weights are
// scaled by residual.
func (b *Builder) CausalSelfAttention(x, bias string, hidden, heads int, residual float64, name string) string {
	s := b.Scope(name)
	dh := int64(hidden / heads)
	qkv := s.OpN("Split", []string{s.Linear(x, hidden, 3*hidden, "c_attn"), s.Ints("qkv_split", int64(hidden), int64(hidden), int64(hidden))}, 3, onnx.AttrInt("axis", -1))
	split := s.Ints("heads_shape", 0, 0, int64(heads), dh)
	head := func(t string, perm ...int64) string {
		return s.Op("Transpose", []string{s.Op("Reshape", []string{t, split})}, onnx.AttrInts("perm", perm...))
	}
	q, k, v := head(qkv[0], 0, 2, 1, 3), head(qkv[1], 0, 2, 3, 1), head(qkv[2], 0, 2, 1, 3)
	scores := s.Op("Div", []string{s.Op("MatMul", []string{q, k}), s.Scalar("scale", float32(math.Sqrt(float64(dh))))})
	p := s.Op("Softmax", []string{s.Op("Add", []string{scores, bias})}, onnx.AttrInt("axis", -1))
	ctx := s.Op("Transpose", []string{s.Op("MatMul", []string{p, v})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	ctx = s.Op("Reshape", []string{ctx, s.Ints("merge_shape", 0, 0, int64(hidden))})
	return s.LinearStd(ctx, hidden, hidden, residual/math.Sqrt(float64(hidden)), "c_proj")
}

// GELUTanh is GPT-2's gelu_new, x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2,
// as its exporter writes it (Pow, Tanh).
func (b *Builder) GELUTanh(x string) string {
	cube := b.Op("Mul", []string{b.Op("Pow", []string{x, b.Scalar("three", 3)}), b.Scalar("cubic", 0.044715)})
	inner := b.Op("Mul", []string{b.Op("Add", []string{x, cube}), b.Scalar("sqrt_2_over_pi", float32(math.Sqrt(2/math.Pi)))})
	one := b.Op("Add", []string{b.Op("Tanh", []string{inner}), b.Scalar("one", 1)})
	return b.Op("Mul", []string{b.Op("Mul", []string{x, one}), b.Scalar("half", 0.5)})
}

// DecoderTokens makes n samples of seq token ids for a decoder of cfg:
// ids drawn from a Zipf law over the vocabulary (s = 1.1: a few ids are
// very frequent, as tokens of text are, and byte-pair vocabularies give
// frequent tokens low ids), an attention mask of ones (calibration runs
// on full windows of text, with no padding). The arrays are named by the
// model's inputs, int64 [n, seq].
func DecoderTokens(cfg DecoderConfig, n, seq int, seed uint64) []dataset.Array {
	c := cfg.withDefaults()
	if seq > c.MaxPositions {
		panic(fmt.Sprintf("modelgen: sequence %d is longer than MaxPositions %d", seq, c.MaxPositions))
	}
	return zipfTokens(c.Vocab, n, seq, seed)
}

// zipfTokens is n samples of seq token ids of a vocabulary (Zipf, s =
// 1.1) and their attention mask of ones, int64 [n, seq].
func zipfTokens(vocab, n, seq int, seed uint64) []dataset.Array {
	r := rand.New(rand.NewPCG(seed, 0x67707432))
	z := rand.NewZipf(r, 1.1, 8, uint64(vocab-1))
	ids := make([]int64, n*seq)
	mask := make([]int64, n*seq)
	for i := range ids {
		ids[i], mask[i] = int64(z.Uint64()), 1
	}
	shape := []int{n, seq}
	return []dataset.Array{
		{Name: InputIDs, Shape: shape, Data: ids},
		{Name: AttentionMask, Shape: shape, Data: mask},
	}
}

// DecoderFiles is a decoder of cfg as model bytes and n samples of seq
// token ids (DecoderTokens) as NPZ bytes: a model and a dataset to put
// where a job reads them.
func DecoderFiles(cfg DecoderConfig, n, seq int, seed uint64) (model, tokens []byte, err error) {
	if model, err = Decoder(cfg).Bytes(); err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	if err := dataset.WriteNPZ(&b, DecoderTokens(cfg, n, seq, seed)...); err != nil {
		return nil, nil, err
	}
	return model, b.Bytes(), nil
}
