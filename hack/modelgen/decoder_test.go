package modelgen

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// The parameter counts the decoder configs promise: GPT2Small is GPT-2
// small's 124,439,808 exactly, Decoder1B is past 1.1 B parameters and
// 4 GB of float32, and Params counts what Decoder builds.
func TestDecoderParams(t *testing.T) {
	got := map[string]int64{
		"GPT2Small":           GPT2Small.Params(),
		"small decoder built": countParams(Decoder(SmallDecoder)),
		"small decoder":       SmallDecoder.Params(),
	}
	want := map[string]int64{"GPT2Small": 124_439_808, "small decoder built": SmallDecoder.Params(), "small decoder": 136_960}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parameters (-want +got):\n%s", diff)
	}
	if p := Decoder1B.Params(); p < 1_100_000_000 || 4*p < 4_000_000_000 || p > 1_150_000_000 {
		t.Errorf("Decoder1B has %d parameters (%d bytes), want 1.10 to 1.15 B, past 4 GB", p, 4*p)
	}
}

// countParams counts the float weights of m that are not scalars (of
// GELU, scaling, masks), except those whose names end in one of except.
func countParams(m *onnx.Model, except ...string) int64 {
	var n int64
	for _, w := range m.Weights() {
		if w.DType == onnx.Float && len(w.Dims) > 0 && !slices.ContainsFunc(except, func(e string) bool { return strings.HasSuffix(w.Name, e) }) {
			n += int64(w.NumElements())
		}
	}
	return n
}

// runDecoder runs m on the first samples of tokens and returns its
// outputs, with the exposed tensors.
func runDecoder(t *testing.T, m *onnx.Model, tokens []dataset.Array, samples int, expose ...string) map[string]*onnx.Tensor {
	t.Helper()
	data, err := feed.FromDataset(feed.Inputs(m), &dataset.Dataset{Name: "tokens", Arrays: tokens})
	if err != nil {
		t.Fatal(err)
	}
	in, err := data.Tensors(slices.Collect(func(yield func(int) bool) {
		for i := range samples {
			if !yield(i) {
				return
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := feed.Open(m, feed.Options{Threads: 1, Expose: expose})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load the decoder: %v", err)
	}
	defer s.Close()
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func floats(t *testing.T, v *onnx.Tensor) []float32 {
	t.Helper()
	f, err := v.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// A position's output depends on its token and the ones before it, never
// on later ones: changing token 10 leaves positions 0-9 bit-identical and
// changes every position from 10 on.
func TestDecoderIsCausal(t *testing.T) {
	orttest.Require(t)
	m := Decoder(SmallDecoder)
	tokens := DecoderTokens(SmallDecoder, 1, 16, 3)
	before := floats(t, runDecoder(t, m, tokens, 1)[LastHiddenState])
	ids := tokens[0].Data.([]int64)
	ids[10] = (ids[10] + 1) % int64(SmallDecoder.Vocab)
	after := floats(t, runDecoder(t, m, tokens, 1)[LastHiddenState])
	checkChangedFrom(t, before, after, SmallDecoder.Hidden, 10)
}

// checkChangedFrom checks that the outputs (width values per position)
// after token from changed differ from before from that position on, and
// only there.
func checkChangedFrom(t *testing.T, before, after []float32, width, from int) {
	t.Helper()
	n := len(before) / width
	var changed []bool
	for p := range n {
		changed = append(changed, !slices.Equal(before[p*width:(p+1)*width], after[p*width:(p+1)*width]))
	}
	want := make([]bool, n)
	for p := from; p < n; p++ {
		want[p] = true
	}
	if diff := cmp.Diff(want, changed); diff != "" {
		t.Errorf("positions changed by token %d (-want +got):\n%s", from, diff)
	}
}

// The inputs of the attention and feed-forward layers carry the same few
// outlier channels in every block, an order of magnitude above the
// typical channel.
func TestDecoderOutlierChannels(t *testing.T) {
	orttest.Require(t)
	cfg := SmallDecoder
	cfg.Outliers = 3
	m := Decoder(cfg)
	inputs := []string{"h.0.ln_1.LayerNormalization_output", "h.0.ln_2.LayerNormalization_output", "h.1.ln_1.LayerNormalization_output"}
	out := runDecoder(t, m, DecoderTokens(cfg, 4, 32, 5), 4, inputs...)
	values := make([][]float32, len(inputs))
	for i, name := range inputs {
		values[i] = floats(t, out[name])
	}
	checkOutlierChannels(t, inputs, values, cfg.Hidden, 3)
}

// checkOutlierChannels checks that the activations (values of names,
// hidden channels last) have k channels of mean magnitude at least 8x
// the median channel's, the next one at most 3x, and the same k in
// every tensor.
func checkOutlierChannels(t *testing.T, names []string, values [][]float32, hidden, k int) {
	t.Helper()
	var sets [][]int
	for i, name := range names {
		mean := make([]float64, hidden)
		for j, x := range values[i] {
			mean[j%hidden] += math.Abs(float64(x))
		}
		order := make([]int, hidden)
		for j := range order {
			order[j] = j
		}
		sort.Slice(order, func(a, b int) bool { return mean[order[a]] > mean[order[b]] })
		median := mean[order[hidden/2]]
		top := slices.Clone(order[:k])
		slices.Sort(top)
		sets = append(sets, top)
		if r := mean[order[k-1]] / median; r < 8 {
			t.Errorf("%s: the largest channel but %d is %.1fx the median, want >= 8x", name, k-1, r)
		}
		if r := mean[order[k]] / median; r > 3 {
			t.Errorf("%s: the channel after the %d largest is %.1fx the median, want only %d outliers", name, k, r, k)
		}
	}
	for _, s := range sets[1:] {
		if diff := cmp.Diff(sets[0], s); diff != "" {
			t.Errorf("outlier channels differ between blocks (-first +other):\n%s", diff)
		}
	}
}

// DecoderExternal streams the same weights to an external data file: the
// model loads back (LoadFile) with the weights Decoder holds inline, and
// ONNX Runtime, reading the data file from the model's directory, gives
// bit-identical outputs.
func TestDecoderExternal(t *testing.T) {
	orttest.Require(t)
	path := filepath.Join(t.TempDir(), "decoder.onnx")
	if err := WriteDecoderExternal(SmallDecoder, path); err != nil {
		t.Fatal(err)
	}
	inline := Decoder(SmallDecoder)
	back, err := onnx.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	weights := func(m *onnx.Model) map[string][]float32 {
		got := map[string][]float32{}
		for _, w := range m.Weights() {
			if w.DType == onnx.Float {
				v, err := w.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				got[w.Name] = v
			}
		}
		return got
	}
	if diff := cmp.Diff(weights(inline), weights(back)); diff != "" {
		t.Errorf("weights streamed to external data differ from inline ones (-inline +external):\n%s", diff)
	}
	st, err := os.Stat(path + ".data")
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 4*SmallDecoder.Params()*9/10 {
		t.Errorf("data file has %d bytes, want most of the %d parameters' bytes", st.Size(), SmallDecoder.Params())
	}
	header, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens := DecoderTokens(SmallDecoder, 2, 12, 9)
	want := floats(t, runDecoder(t, inline, tokens, 2)[LastHiddenState])
	s, err := ort.NewSession("decoder.onnx", header, ort.Options{IntraOpThreads: 1, ExternalDataDir: filepath.Dir(path)})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load the decoder with external data: %v", err)
	}
	defer s.Close()
	data, err := feed.FromDataset(feed.Inputs(inline), &dataset.Dataset{Name: "tokens", Arrays: tokens})
	if err != nil {
		t.Fatal(err)
	}
	in, err := data.Tensors([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	if got := floats(t, out[LastHiddenState]); !slices.Equal(want, got) {
		t.Errorf("outputs with external data differ from inline: max difference %g", orttest.MaxDiff(out[LastHiddenState], onnx.NewTensor([]int64{2, 12, int64(SmallDecoder.Hidden)}, want)))
	}
}

// Token ids are in the vocabulary, follow a heavy-tailed law (the most
// frequent id is far more common than the median one) and the mask is
// all ones.
func TestDecoderTokens(t *testing.T) {
	arrays := DecoderTokens(SmallDecoder, 20, 32, 7)
	ids, mask := arrays[0].Data.([]int64), arrays[1].Data.([]int64)
	count := map[int64]int{}
	for i, id := range ids {
		if id < 0 || id >= int64(SmallDecoder.Vocab) || mask[i] != 1 {
			t.Fatalf("token %d: id %d mask %d", i, id, mask[i])
		}
		count[id]++
	}
	var counts []int
	for _, c := range count {
		counts = append(counts, c)
	}
	slices.Sort(counts)
	if top, med := counts[len(counts)-1], counts[len(counts)/2]; top < 10*med {
		t.Errorf("most frequent id appears %d times, the median one %d: want a Zipf-like spread", top, med)
	}
	if diff := cmp.Diff([]int{20, 32}, arrays[0].Shape); diff != "" {
		t.Errorf("shape (-want +got):\n%s", diff)
	}
}
