package modelgen

import (
	"bytes"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

type generated struct {
	name  string
	model func(seed uint64) *onnx.Model
	data  []dataset.Array
	// outputs and their shapes for the data's samples.
	outputs map[string][]int64
}

func cases() []generated {
	bert := SmallBERT
	ctrl := ControllerConfig{}
	lstm := ControllerConfig{Cell: "LSTM", Hidden: 32}
	mobile := MobileNetConfig{Width: 0.35, Resolution: 64, Classes: 10}
	return []generated{
		{"bert", func(s uint64) *onnx.Model { c := bert; c.Seed = s; return BERT(c) }, BERTTokens(bert, 3, 16, 1),
			map[string][]int64{LastHiddenState: {3, 16, 64}}},
		{"decoder", func(s uint64) *onnx.Model { c := SmallDecoder; c.Seed = s; return Decoder(c) }, DecoderTokens(SmallDecoder, 3, 16, 1),
			map[string][]int64{LastHiddenState: {3, 16, 64}}},
		{"gru controller", func(s uint64) *onnx.Model { c := ctrl; c.Seed = s; return Controller(c) }, Sequences(ctrl, 3, 10, 1),
			map[string][]int64{ControllerY: {3, 10, 4}, ControllerNext: {3, 64}}},
		{"lstm controller", func(s uint64) *onnx.Model { c := lstm; c.Seed = s; return Controller(c) }, Sequences(lstm, 3, 10, 1),
			map[string][]int64{ControllerY: {3, 10, 4}, ControllerNext: {3, 32}}},
		{"mobilenetv2", func(s uint64) *onnx.Model { c := mobile; c.Seed = s; return MobileNetV2(c) }, []dataset.Array{Images(3, 64, 1)},
			map[string][]int64{"logits": {3, 10}}},
	}
}

// Every generated model loads and runs in ONNX Runtime on its dataset,
// with the outputs it declares; its outputs vary across samples and
// positions (the weights carry signal: nothing collapsed to a constant
// or blew up), and the same seed gives the same bytes, another seed
// other weights.
func TestGeneratedModelsRun(t *testing.T) {
	orttest.Require(t)
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model(1)
			data, err := feed.FromDataset(feed.Inputs(m), &dataset.Dataset{Name: tc.name, Arrays: tc.data})
			if err != nil {
				t.Fatal(err)
			}
			in, err := data.Tensors([]int{0, 1, 2})
			if err != nil {
				t.Fatal(err)
			}
			s, err := feed.Open(m, feed.Options{Threads: 1})
			if err != nil {
				t.Fatalf("ONNX Runtime does not load %s: %v", tc.name, err)
			}
			defer s.Close()
			out, err := s.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			shapes := map[string][]int64{}
			for name, v := range out {
				shapes[name] = v.Dims
				vals, err := v.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				mean, sd := stats(vals)
				if math.IsNaN(sd) || sd < 0.05 || sd > 100 || math.Abs(mean) > 100 {
					t.Errorf("%s: mean %.3g, standard deviation %.3g: want values of order one that vary", name, mean, sd)
				}
			}
			if diff := cmp.Diff(tc.outputs, shapes); diff != "" {
				t.Errorf("outputs (-want +got):\n%s", diff)
			}
			a, b, c := bytesOf(t, m), bytesOf(t, tc.model(1)), bytesOf(t, tc.model(2))
			if !bytes.Equal(a, b) {
				t.Error("the same seed made different models")
			}
			if bytes.Equal(a, c) || len(a) != len(c) {
				t.Errorf("seeds 1 and 2 made %d and %d bytes, want the same architecture with other weights", len(a), len(c))
			}
		})
	}
}

func bytesOf(t *testing.T, m *onnx.Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stats(v []float32) (mean, sd float64) {
	for _, x := range v {
		mean += float64(x)
	}
	mean /= float64(len(v))
	for _, x := range v {
		sd += (float64(x) - mean) * (float64(x) - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)))
}

// The sizes the configs promise: SmallBERT is about 0.2 M parameters,
// BERTSize(12) BERT-base's width and depth, MobileNetV2 at width 1 about
// 3.5 M parameters (as the original).
func TestSizes(t *testing.T) {
	params := func(m *onnx.Model) int {
		n := 0
		for _, w := range m.Weights() {
			if w.DType == onnx.Float {
				n += w.NumElements()
			}
		}
		return n
	}
	cases := []struct {
		name     string
		m        *onnx.Model
		min, max int
	}{
		{"SmallBERT", BERT(SmallBERT), 150_000, 250_000},
		{"BERTSize(2)", BERT(BERTSize(2)), 800_000, 1_300_000},
		{"MobileNetV2", MobileNetV2(MobileNetConfig{}), 3_400_000, 3_600_000},
		{"GRU controller", Controller(ControllerConfig{}), 25_000, 35_000},
	}
	for _, tc := range cases {
		if p := params(tc.m); p < tc.min || p > tc.max {
			t.Errorf("%s: %d parameters, want %d to %d", tc.name, p, tc.min, tc.max)
		}
	}
	if c := BERTSize(12).withDefaults(); c.Hidden != 768 || c.Layers != 12 || c.Heads != 12 || c.Intermediate != 3072 {
		t.Errorf("BERTSize(12) = %+v, want BERT-base's hidden 768, 12 layers, 12 heads", c)
	}
}

// Token ids are in the vocabulary, the mask covers a prefix of at least a
// quarter of the sequence, token types switch once inside it.
func TestBERTTokens(t *testing.T) {
	arrays := BERTTokens(SmallBERT, 50, 32, 7)
	ids, mask, types := arrays[0].Data.([]int64), arrays[1].Data.([]int64), arrays[2].Data.([]int64)
	for s := range 50 {
		length := 0
		for t := range 32 {
			length += int(mask[s*32+t])
		}
		if length < 8 {
			t.Errorf("sample %d: %d tokens, want at least 8", s, length)
		}
		for i := s * 32; i < (s+1)*32; i++ {
			pos := i - s*32
			switch {
			case pos < length && (ids[i] < 1 || ids[i] >= int64(SmallBERT.Vocab) || mask[i] != 1):
				t.Fatalf("sample %d position %d: id %d mask %d", s, pos, ids[i], mask[i])
			case pos >= length && (ids[i] != 0 || mask[i] != 0 || types[i] != 0):
				t.Fatalf("sample %d position %d is padding but has id %d mask %d type %d", s, pos, ids[i], mask[i], types[i])
			case pos > 0 && types[i] < types[i-1] && pos < length:
				t.Fatalf("sample %d: token types go back to 0 at %d", s, pos)
			}
		}
	}
}
