package feed_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// withPast is a decoder exported with its KV cache (optimum's
// text-generation-with-past): one layer of 2 key-value heads of 4.
var withPast = []feed.Input{
	{Name: "input_ids", DType: onnx.Int64, Dims: []int64{-1, -1}},
	{Name: "attention_mask", DType: onnx.Int64, Dims: []int64{-1, -1}},
	{Name: "position_ids", DType: onnx.Int64, Dims: []int64{-1, -1}},
	{Name: "past_key_values.0.key", DType: onnx.Float, Dims: []int64{-1, 2, -1, 4}},
	{Name: "past_key_values.0.value", DType: onnx.Float, Dims: []int64{-1, 2, -1, 4}},
}

// A dataset of what a tokenizer gives (input_ids, attention_mask) feeds
// a with-past decoder: the past is empty (0 on its past dimension, one
// per sample), position_ids count the attended tokens as transformers'
// generate does (left padding: 1 under the padding, then 0, 1, ...);
// a dataset that has position_ids feeds its own.
func TestDerivedInputs(t *testing.T) {
	ids := dataset.Array{Name: "input_ids", Shape: []int{2, 4}, Data: seqI(8, 5)}
	mask := dataset.Array{Name: "attention_mask", Shape: []int{2, 4}, Data: []int64{1, 1, 1, 1, 0, 0, 1, 1}}
	given := dataset.Array{Name: "position_ids", Shape: []int{2, 4}, Data: []int64{9, 9, 9, 9, 8, 8, 8, 8}}
	tests := []struct {
		name    string
		ins     []feed.Input
		arrays  []dataset.Array
		want    map[string]*onnx.Tensor
		wantErr string
	}{
		{
			name: "tokenizer arrays: an empty past, positions from the mask", ins: withPast, arrays: []dataset.Array{ids, mask},
			want: map[string]*onnx.Tensor{
				"position_ids":            onnx.NewTensor([]int64{2, 4}, []int64{0, 1, 2, 3, 1, 1, 0, 1}),
				"past_key_values.0.key":   onnx.NewTensor([]int64{2, 2, 0, 4}, []float32{}),
				"past_key_values.0.value": onnx.NewTensor([]int64{2, 2, 0, 4}, []float32{}),
			},
		},
		{
			name: "no mask input: positions 0..seq-1", ins: append([]feed.Input{withPast[0]}, withPast[2:]...), arrays: []dataset.Array{ids},
			want: map[string]*onnx.Tensor{"position_ids": onnx.NewTensor([]int64{2, 4}, []int64{0, 1, 2, 3, 0, 1, 2, 3})},
		},
		{
			name: "position_ids given", ins: withPast, arrays: []dataset.Array{ids, mask, given},
			want: map[string]*onnx.Tensor{"position_ids": onnx.NewTensor([]int64{2, 4}, []int64{9, 9, 9, 9, 8, 8, 8, 8})},
		},
		{
			name: "the token ids are not derived", ins: withPast, arrays: []dataset.Array{mask},
			wantErr: `no array "input_ids" for model input "input_ids"`,
		},
		{
			name:    "a past of two dynamic dimensions besides the batch is not derived",
			ins:     []feed.Input{withPast[0], {Name: "past_key_values.0.key", DType: onnx.Float, Dims: []int64{-1, -1, -1, 4}}},
			arrays:  []dataset.Array{ids},
			wantErr: `no array "past_key_values.0.key"`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := feed.FromDataset(tc.ins, &dataset.Dataset{Name: "tokens.npz", Arrays: tc.arrays})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Tensors([]int{0, 1})
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				if diff := cmp.Diff(want, got[name]); diff != "" {
					t.Errorf("%s (-want +got):\n%s", name, diff)
				}
			}
			if d.Len() != 2 {
				t.Errorf("%d samples, want 2", d.Len())
			}
		})
	}
}

// Synthesized data for a with-past decoder has an empty past too: a
// past of 320 would not match the attention mask's length.
func TestSynthesizeEmptyPast(t *testing.T) {
	d, err := feed.Synthesize(withPast, feed.Synth{Samples: 2})
	if err != nil {
		t.Fatal(err)
	}
	got := d.SampleShapes()
	want := map[string][]int64{
		"input_ids": {feed.DefaultDynamicDim}, "attention_mask": {feed.DefaultDynamicDim}, "position_ids": {feed.DefaultDynamicDim},
		"past_key_values.0.key": {2, 0, 4}, "past_key_values.0.value": {2, 0, 4},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sample shapes (-want +got):\n%s", diff)
	}
}
