package prune

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// TestReadCalibration checks batches against the model's inputs: what
// does not fit is ErrCalibration naming the input and both shapes, and a
// model with a fixed batch dimension gets batches of exactly that size.
func TestReadCalibration(t *testing.T) {
	model := func(batch onnx.Dim) *onnx.Model {
		b := newBuilder("m")
		y := b.NamedNode("MatMul", "mm", []string{b.Input("x", batch, 3), b.weight("w", 3, 2)}, []string{"y"})
		return b.Model(13, y)
	}
	x := func(dims ...int64) *onnx.Tensor {
		return onnx.NewTensor(dims, make([]float32, onnx.NumElements(dims)))
	}
	tests := []struct {
		name    string
		batch   onnx.Dim
		batches []map[string]*onnx.Tensor
		limit   int
		sizes   []int64 // batch sizes read
		err     string
	}{
		{"dynamic batch, limit cuts the second", "N", []map[string]*onnx.Tensor{{"x": x(4, 3)}, {"x": x(4, 3)}}, 6, []int64{4, 2}, ""},
		{"fixed batch 2 regroups, the odd sample left out", 2, []map[string]*onnx.Tensor{{"x": x(3, 3)}, {"x": x(2, 3)}}, 100, []int64{2, 2}, ""},
		{"wrong sample shape", "N", []map[string]*onnx.Tensor{{"x": x(4, 5)}}, 10, nil, `input "x" has shape [4 5], the model takes [N 3]`},
		{"wrong rank", "N", []map[string]*onnx.Tensor{{"x": x(4, 3, 1)}}, 10, nil, `input "x" has shape [4 3 1]`},
		{"wrong type", "N", []map[string]*onnx.Tensor{{"x": onnx.NewTensor([]int64{1, 3}, []int64{1, 2, 3})}}, 10, nil, `input "x" is INT64, the model takes FLOAT`},
		{"missing input", "N", []map[string]*onnx.Tensor{{"z": x(1, 3)}}, 10, nil, `no tensor for model input "x"`},
		{"extra input", "N", []map[string]*onnx.Tensor{{"x": x(1, 3), "z": x(1, 3)}}, 10, nil, `tensors ["z"] are not inputs of the model`},
		{"no samples", "N", nil, 10, nil, "no samples"},
		{"fewer samples than the fixed batch", 4, []map[string]*onnx.Tensor{{"x": x(3, 3)}}, 10, nil, "fewer samples than the model's fixed batch of 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			set, err := readCalibration(model(tc.batch), feed.NewBatches(tc.batches...), tc.limit)
			if tc.err != "" {
				if !errors.Is(err, ErrCalibration) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want ErrCalibration saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sizes []int64
			for _, b := range set.batches {
				sizes = append(sizes, b["x"].Dims[0])
				if n := len(b["x"].Data.([]float32)); int64(n) != b["x"].Dims[0]*3 {
					t.Errorf("batch of %d samples holds %d values", b["x"].Dims[0], n)
				}
			}
			if diff := cmp.Diff(tc.sizes, sizes); diff != "" {
				t.Errorf("batch sizes (-want +got):\n%s", diff)
			}
		})
	}
}
