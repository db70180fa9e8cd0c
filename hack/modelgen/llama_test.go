package modelgen

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// The parameter counts: Llama135M is SmolLM-135M's 134,515,008 exactly,
// and Params counts what Llama builds, tied and untied.
func TestLlamaParams(t *testing.T) {
	counted := func(m *onnx.Model) int64 { return countParams(m, "cos_cached", "sin_cached") }
	untied := SmallLlama
	untied.Untied = true
	got := map[string]int64{
		"Llama135M":    Llama135M.Params(),
		"small":        SmallLlama.Params(),
		"small built":  counted(Llama(SmallLlama)),
		"untied":       untied.Params(),
		"untied built": counted(Llama(untied)),
	}
	want := map[string]int64{
		"Llama135M": 134_515_008, "small": 500_352, "small built": 500_352,
		"untied": 500_352 + 1024*128, "untied built": 500_352 + 1024*128,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
}

// llamaStep runs one step of m (LlamaStep's inputs) and returns its
// outputs, with the exposed tensors.
func llamaStep(t *testing.T, m *onnx.Model, c LlamaConfig, ids []int64, start int, past map[string]*onnx.Tensor, expose ...string) map[string]*onnx.Tensor {
	t.Helper()
	in := LlamaStep(c, ids, start, past)
	s, err := feed.Open(m, feed.Options{Threads: 1, Expose: expose})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load the model: %v", err)
	}
	defer s.Close()
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lastRows is the values of the last rows of t along dimension axis.
func lastRows(t *testing.T, v *onnx.Tensor, axis, rows int) []float32 {
	t.Helper()
	f := floats(t, v)
	outer := onnx.NumElements(v.Dims[:axis])
	inner := onnx.NumElements(v.Dims[axis+1:])
	n := int(v.Dims[axis])
	var out []float32
	for o := range outer {
		out = append(out, f[(o*n+n-rows)*inner:(o+1)*n*inner]...)
	}
	return out
}

// The model's outputs are what optimum's with-past export gives, and its
// cache is consistent: running 24 tokens in one call with an empty past
// gives, to float rounding, the logits of the last 8 and the same
// present keys and values as running the first 16, then the last 8 with
// the first call's present as the past.
func TestLlamaKVCache(t *testing.T) {
	orttest.Require(t)
	for _, tied := range []bool{true, false} {
		c := SmallLlama
		c.Untied = !tied
		m := Llama(c)
		ids := LlamaTokens(c, 1, 24, 3)[0].Data.([]int64)
		whole := llamaStep(t, m, c, ids, 0, nil)
		first := llamaStep(t, m, c, ids[:16], 0, nil)
		second := llamaStep(t, m, c, ids[16:], 16, first)
		wantNames := []string{Logits}
		for i := range c.Layers {
			wantNames = append(wantNames, PresentKey(i), PresentValue(i))
		}
		var names []string
		for _, o := range m.Proto.GetGraph().GetOutput() {
			names = append(names, o.GetName())
		}
		if diff := cmp.Diff(wantNames, names); diff != "" {
			t.Errorf("outputs (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]int64{1, 24, int64(c.Vocab)}, whole[Logits].Dims); diff != "" {
			t.Errorf("logits shape (-want +got):\n%s", diff)
		}
		for _, name := range wantNames {
			axis := 2 // present: [batch, kv heads, past + sequence, head dim]
			if name == Logits {
				axis = 1
			}
			if diff := cmp.Diff(whole[name].Dims, second[name].Dims); name != Logits && diff != "" {
				t.Errorf("tied %v: %s shape (-one call +two):\n%s", tied, name, diff)
			}
			w, s := lastRows(t, whole[name], axis, 8), lastRows(t, second[name], axis, 8)
			scale := 0.0
			for _, v := range w {
				scale = max(scale, math.Abs(float64(v)))
			}
			if d := maxDiff(w, s); d > 1e-4*scale || scale == 0 {
				t.Errorf("tied %v: %s of the last 8 tokens differs by %g (largest value %g) between one call and two with the cache", tied, name, d, scale)
			}
		}
	}
}

func maxDiff(a, b []float32) float64 {
	d := math.Inf(1)
	if len(a) == len(b) {
		d = 0
		for i := range a {
			d = max(d, math.Abs(float64(a[i]-b[i])))
		}
	}
	return d
}

// A position's logits depend on its token and the ones before it, never
// on later ones: changing token 10 leaves positions 0-9 bit-identical and
// changes every position from 10 on.
func TestLlamaIsCausal(t *testing.T) {
	orttest.Require(t)
	m := Llama(SmallLlama)
	ids := LlamaTokens(SmallLlama, 1, 16, 3)[0].Data.([]int64)
	before := floats(t, llamaStep(t, m, SmallLlama, ids, 0, nil)[Logits])
	ids[10] = (ids[10] + 1) % int64(SmallLlama.Vocab)
	after := floats(t, llamaStep(t, m, SmallLlama, ids, 0, nil)[Logits])
	checkChangedFrom(t, before, after, SmallLlama.Vocab, 10)
}

// The inputs of the attention and SwiGLU layers carry the same few
// outlier channels in every block, as the GPT-2-style decoder's.
func TestLlamaOutlierChannels(t *testing.T) {
	orttest.Require(t)
	cfg := SmallLlama
	cfg.Outliers = 3
	m := Llama(cfg)
	norms := []string{"model.layers.0.input_layernorm.Mul_1_output", "model.layers.0.post_attention_layernorm.Mul_1_output", "model.layers.1.input_layernorm.Mul_1_output"}
	out := llamaStep(t, m, cfg, LlamaTokens(cfg, 1, 128, 5)[0].Data.([]int64), 0, nil, norms...)
	values := make([][]float32, len(norms))
	for i, name := range norms {
		values[i] = floats(t, out[name])
	}
	checkOutlierChannels(t, norms, values, cfg.Hidden, 3)
}
