package modelgen

import (
	"fmt"
	"math"

	"github.com/kompress/kompress/runner/onnx"
)

// Blocks of the default domain at opset 17 (LayerNormalization; Squeeze
// and Unsqueeze take their axes as an input), written the way PyTorch's
// exporter writes the layers: MatMul + Add for a linear layer with its
// weight as [in, out], Erf for GELU, BatchNormalization folded into Conv.

// Linear is x·W + b with W [in, out] and b [out]: a layer of in inputs and
// out outputs over the last axis of x.
func (b *Builder) Linear(x string, in, out int, name string) string {
	return b.LinearStd(x, in, out, 1/math.Sqrt(float64(in)), name)
}

// LinearStd is Linear with weights of standard deviation std (a residual
// branch's output projection is scaled down, as GPT-2 initializes it).
func (b *Builder) LinearStd(x string, in, out int, std float64, name string) string {
	s := b.Scope(name)
	w := s.Param("weight", Laplace(std), int64(in), int64(out))
	bias := s.Param("bias", Normal(0, 0.02), int64(out))
	return s.Op("Add", []string{s.Op("MatMul", []string{x, w}), bias})
}

// LayerNorm normalizes the last axis (hidden values) with a learned gain
// around one and a small bias.
func (b *Builder) LayerNorm(x string, hidden int, name string) string {
	s := b.Scope(name)
	g := s.Param("weight", Normal(1, 0.1), int64(hidden))
	beta := s.Param("bias", Normal(0, 0.05), int64(hidden))
	return s.Op("LayerNormalization", []string{x, g, beta}, onnx.AttrInt("axis", -1), onnx.AttrFloat("epsilon", 1e-12))
}

// GELU is x·(1 + erf(x/√2))/2, as BERT's exporters write it.
func (b *Builder) GELU(x string) string {
	e := b.Op("Erf", []string{b.Op("Div", []string{x, b.Scalar("sqrt2", math.Sqrt2)})})
	one := b.Op("Add", []string{e, b.Scalar("one", 1)})
	return b.Op("Mul", []string{b.Op("Mul", []string{x, one}), b.Scalar("half", 0.5)})
}

// Embedding looks rows of a [rows, hidden] table up by the int64 ids.
func (b *Builder) Embedding(ids string, rows, hidden int, name string) string {
	table := b.Scope(name).Param("weight", Normal(0, 0.5), int64(rows), int64(hidden))
	return b.Op("Gather", []string{table, ids})
}

// AttentionMask turns a [batch, seq] int64 mask of ones (tokens) and zeros
// (padding) into the additive bias [batch, 1, 1, seq] the attention
// scores take: 0 for tokens, -10000 for padding.
func (b *Builder) AttentionMask(mask string) string {
	m := b.Op("Cast", []string{mask}, onnx.AttrInt("to", int64(onnx.Float)))
	m = b.Op("Unsqueeze", []string{m, b.Ints("mask_axes", 1, 2)})
	inv := b.Op("Sub", []string{b.Scalar("one", 1), m})
	return b.Op("Mul", []string{inv, b.Scalar("mask_value", -10000)})
}

// SelfAttention is multi-head scaled dot-product attention over x [batch,
// seq, hidden] with the additive mask bias (AttentionMask), followed by
// the output projection.
func (b *Builder) SelfAttention(x, maskBias string, hidden, heads int, name string) string {
	if hidden%heads != 0 {
		panic(fmt.Sprintf("modelgen: hidden %d is not a multiple of %d heads", hidden, heads))
	}
	s := b.Scope(name)
	dh := int64(hidden / heads)
	self := s.Scope("self")
	split := self.Ints("heads_shape", 0, 0, int64(heads), dh)
	project := func(what string, perm ...int64) string {
		p := self.Linear(x, hidden, hidden, what)
		return self.Op("Transpose", []string{self.Op("Reshape", []string{p, split})}, onnx.AttrInts("perm", perm...))
	}
	q := project("query", 0, 2, 1, 3) // [batch, heads, seq, dh]
	k := project("key", 0, 2, 3, 1)   // [batch, heads, dh, seq]
	v := project("value", 0, 2, 1, 3)
	scores := self.Op("Div", []string{self.Op("MatMul", []string{q, k}), self.Scalar("scale", float32(math.Sqrt(float64(dh))))})
	p := self.Op("Softmax", []string{self.Op("Add", []string{scores, maskBias})}, onnx.AttrInt("axis", -1))
	ctx := self.Op("Transpose", []string{self.Op("MatMul", []string{p, v})}, onnx.AttrInts("perm", 0, 2, 1, 3))
	ctx = self.Op("Reshape", []string{ctx, self.Ints("merge_shape", 0, 0, int64(hidden))})
	return s.Scope("output").Linear(ctx, hidden, hidden, "dense")
}

// FeedForward is Linear -> GELU -> Linear, hidden -> inner -> hidden.
func (b *Builder) FeedForward(x string, hidden, inner int, name string) string {
	s := b.Scope(name)
	h := s.GELU(s.Scope("intermediate").Linear(x, hidden, inner, "dense"))
	return s.Scope("output").Linear(h, inner, hidden, "dense")
}

// EncoderLayer is a post-norm (BERT) transformer layer: attention and
// feed-forward, each added to its input and layer-normalized.
func (b *Builder) EncoderLayer(x, maskBias string, hidden, heads, inner int, name string) string {
	s := b.Scope(name)
	a := s.SelfAttention(x, maskBias, hidden, heads, "attention")
	x = s.Scope("attention.output").LayerNorm(s.Op("Add", []string{a, x}), hidden, "LayerNorm")
	f := s.FeedForward(x, hidden, inner, "ffn")
	return s.Scope("output").LayerNorm(s.Op("Add", []string{f, x}), hidden, "LayerNorm")
}

// Activations of ConvBN.
const (
	ActNone  = ""
	ActReLU  = "relu"
	ActReLU6 = "relu6"
)

// ConvBN is a k×k convolution (padding k/2) from cin to cout channels with
// a batch normalization folded into its weight and bias, then act. The
// folded per-channel gains are log-normal, as trained networks' are, and
// the kernel is scaled for its fan-in (and the activation's) so
// activations stay of order one through the depth.
func (b *Builder) ConvBN(x string, cin, cout, k, stride, group int, act, name string) string {
	s := b.Scope(name)
	fanIn := float64(cin / group * k * k)
	gain := 1.0
	if act != ActNone {
		gain = 2
	}
	w := make([]float32, cout*(cin/group)*k*k)
	d := Laplace(math.Sqrt(gain / fanIn))
	for i := range w {
		w[i] = d.draw(s.g.rand)
	}
	per := len(w) / cout
	scales := make([]float64, cout)
	mean := 0.0
	for c := range scales {
		scales[c] = float64(LogNormal(0, 0.35).draw(s.g.rand))
		mean += scales[c] * scales[c]
	}
	norm := math.Sqrt(mean / float64(cout))
	for c := range cout {
		for i := range per {
			w[c*per+i] *= float32(scales[c] / norm)
		}
	}
	wn := s.Const("weight", onnx.NewTensor([]int64{int64(cout), int64(cin / group), int64(k), int64(k)}, w))
	bias := s.Param("bias", Normal(0, 0.1), int64(cout))
	p := int64(k / 2)
	y := s.Op("Conv", []string{x, wn, bias}, onnx.AttrInts("kernel_shape", int64(k), int64(k)),
		onnx.AttrInts("strides", int64(stride), int64(stride)), onnx.AttrInts("pads", p, p, p, p), onnx.AttrInt("group", int64(group)))
	switch act {
	case ActReLU:
		y = s.Op("Relu", []string{y})
	case ActReLU6:
		y = s.Op("Clip", []string{y, s.Scalar("min", 0), s.Scalar("max", 6)})
	}
	return y
}

// GRU runs a one-layer forward GRU (linear_before_reset, as PyTorch
// exports it) over x [seq, batch, in] from the state h0 [1, batch,
// hidden]; it returns Y [seq, 1, batch, hidden] and Y_h [1, batch, hidden].
func (b *Builder) GRU(x, h0 string, in, hidden int, name string) (y, yh string) {
	s := b.Scope(name)
	w, r, bias := s.recurrentWeights(3, in, hidden)
	outs := s.OpN("GRU", []string{x, w, r, bias, "", h0}, 2, onnx.AttrInt("hidden_size", int64(hidden)), onnx.AttrInt("linear_before_reset", 1))
	return outs[0], outs[1]
}

// LSTM runs a one-layer forward LSTM over x [seq, batch, in] from h0 and
// c0 [1, batch, hidden]; it returns Y [seq, 1, batch, hidden], Y_h and
// Y_c [1, batch, hidden].
func (b *Builder) LSTM(x, h0, c0 string, in, hidden int, name string) (y, yh, yc string) {
	s := b.Scope(name)
	w, r, bias := s.recurrentWeights(4, in, hidden)
	outs := s.OpN("LSTM", []string{x, w, r, bias, "", h0, c0}, 3, onnx.AttrInt("hidden_size", int64(hidden)))
	return outs[0], outs[1], outs[2]
}

// recurrentWeights draws W [1, gates*hidden, in], R [1, gates*hidden,
// hidden] and B [1, 2*gates*hidden].
func (b *Builder) recurrentWeights(gates, in, hidden int) (w, r, bias string) {
	g := int64(gates * hidden)
	w = b.Param("W", Laplace(1/math.Sqrt(float64(in))), 1, g, int64(in))
	r = b.Param("R", Laplace(0.8/math.Sqrt(float64(hidden))), 1, g, int64(hidden))
	bias = b.Param("B", Normal(0, 0.1), 1, 2*g)
	return w, r, bias
}
