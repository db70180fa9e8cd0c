package feed_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// multiInput is y = x·sr + ids + h with x float [B,3], ids int64 [B,3],
// sr an int64 scalar and h float16 [B,3]; scaled = x·sr is an
// intermediate tensor. batch is "N" or a fixed size.
func multiInput(batch onnx.Dim) *onnx.Model {
	b := onnxtest.NewBuilder(1)
	b.Input("x", batch, int64(3))
	b.Inputs = append(b.Inputs,
		onnx.ValueInfo("ids", onnx.Int64, []onnx.Dim{batch, int64(3)}),
		onnx.ValueInfo("sr", onnx.Int64, []onnx.Dim{}),
		onnx.ValueInfo("h", onnx.Float16, []onnx.Dim{batch, int64(3)}))
	toFloat := onnx.AttrInt("to", int64(onnx.Float))
	b.Node("Cast", "srf", []string{"sr"}, toFloat)
	b.Node("Mul", "scaled", []string{"x", "srf"})
	b.Node("Cast", "idsf", []string{"ids"}, toFloat)
	b.Node("Cast", "hf", []string{"h"}, toFloat)
	b.Node("Add", "s1", []string{"scaled", "idsf"})
	b.Node("Add", "y", []string{"s1", "hf"})
	m := b.Model(13, "y")
	m.Name = "multi.onnx"
	return m
}

// multiData holds 5 samples: x = i, ids = 10·i, h = 0.5·i (exact in
// float16) and sr = 3 fed whole; y of sample i is 3i + 10i + 0.5i.
func multiData() *dataset.Dataset {
	x, ids, h := make([]float32, 15), make([]int32, 15), make([]float32, 15)
	for i := range 15 {
		s := i / 3
		x[i], ids[i], h[i] = float32(s), int32(10*s), 0.5*float32(s)
	}
	return &dataset.Dataset{Name: "multi.npz", Arrays: []dataset.Array{
		{Name: "x", Shape: []int{5, 3}, Data: x},
		{Name: "ids", Shape: []int{5, 3}, Data: ids},
		{Name: "sr", Shape: []int{}, Data: []uint8{3}},
		{Name: "h", Shape: []int{5, 3}, Data: h},
	}}
}

// rows is one value per sample of a [B,3] output whose 3 columns are
// equal, for the first n samples.
func rows(t *testing.T, out *onnx.Tensor, n int) []float32 {
	t.Helper()
	v, err := out.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	var r []float32
	for s := range n {
		if v[3*s] != v[3*s+1] || v[3*s] != v[3*s+2] {
			t.Fatalf("sample %d: columns differ: %v", s, v[3*s:3*s+3])
		}
		r = append(r, v[3*s])
	}
	return r
}

// TestRunMultiInput runs a model with several inputs over a dataset
// batch by batch, an intermediate tensor exposed: every input is fed by
// name and converted (int32 ids to int64, a uint8 scalar to int64 with
// every batch, float32 to float16), and a fixed batch is padded or its
// remainder dropped.
func TestRunMultiInput(t *testing.T) {
	orttest.Require(t)
	tests := []struct {
		name       string
		batch      onnx.Dim
		last       feed.Remainder
		wantSpans  []feed.Span
		wantY      []float32
		wantScaled []float32
	}{
		{"dynamic batch of 2", "N", feed.Drop, []feed.Span{{0, 2, 2}, {2, 2, 2}, {4, 1, 1}},
			[]float32{0, 13.5, 27, 40.5, 54}, []float32{0, 3, 6, 9, 12}},
		{"fixed batch of 2, padded", int64(2), feed.Pad, []feed.Span{{0, 2, 2}, {2, 2, 2}, {4, 1, 2}},
			[]float32{0, 13.5, 27, 40.5, 54}, []float32{0, 3, 6, 9, 12}},
		{"fixed batch of 2, remainder dropped", int64(2), feed.Drop, []feed.Span{{0, 2, 2}, {2, 2, 2}},
			[]float32{0, 13.5, 27, 40.5}, []float32{0, 3, 6, 9}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := multiInput(tc.batch)
			sess, err := feed.Open(m, feed.Options{Expose: []string{"scaled"}, Threads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sess.Close()
			d, err := feed.FromDataset(sess.Inputs(), multiData())
			if err != nil {
				t.Fatal(err)
			}
			size, fixed, err := feed.BatchSize(2, 0, d)
			if err != nil {
				t.Fatal(err)
			}
			var spans []feed.Span
			var y, scaled []float32
			err = sess.Each(context.Background(), d, feed.Plan(d.Len(), size, fixed, tc.last), func(sp feed.Span, in, out map[string]*onnx.Tensor) error {
				spans = append(spans, sp)
				if got := in["sr"]; got.DType != onnx.Int64 || len(got.Dims) != 0 {
					t.Errorf("sr fed as %v %v, want an INT64 scalar", got.DType, got.Dims)
				}
				y = append(y, rows(t, out["y"], sp.N)...)
				scaled = append(scaled, rows(t, out["scaled"], sp.N)...)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.wantSpans, spans); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantY, y); diff != "" {
				t.Errorf("y (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantScaled, scaled); diff != "" {
				t.Errorf("exposed scaled (-want +got):\n%s", diff)
			}
			// m itself was not given the extra output.
			if n := len(m.Proto.GetGraph().GetOutput()); n != 1 {
				t.Errorf("the model has %d outputs after Open, want 1", n)
			}
		})
	}
}

// TestParallelRuns: batches run concurrently on a one-thread session
// come back in order and equal to a sequential run.
func TestParallelRuns(t *testing.T) {
	orttest.Require(t)
	m := multiInput("N")
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := feed.OpenBytes("multi.onnx", b, feed.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	d, err := feed.FromDataset(sess.Inputs(), multiData())
	if err != nil {
		t.Fatal(err)
	}
	spans := feed.Plan(d.Len(), 1, false, feed.Pad)
	var got []float32
	err = feed.Parallel(context.Background(), len(spans), 3, func(i int) (*onnx.Tensor, error) {
		in, err := d.Tensors(spans[i].Samples())
		if err != nil {
			return nil, err
		}
		out, err := sess.Run(in)
		return out["y"], err
	}, func(i int, y *onnx.Tensor) error {
		got = append(got, rows(t, y, 1)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float32{0, 13.5, 27, 40.5, 54}, got); diff != "" {
		t.Errorf("y in order (-want +got):\n%s", diff)
	}
}

// TestOpenErrors: exposing a tensor the graph lacks names it; OpenBytes
// exposes tensors too.
func TestOpenErrors(t *testing.T) {
	orttest.Require(t)
	m := multiInput("N")
	if _, err := feed.Open(m, feed.Options{Expose: []string{"nope"}}); err == nil || !strings.Contains(err.Error(), `no tensors named ["nope"]`) {
		t.Errorf("exposing an unknown tensor: error %v", err)
	}
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	s, err := feed.OpenBytes("multi.onnx", b, feed.Options{Expose: []string{"idsf"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var names []string
	for _, o := range s.Outputs() {
		names = append(names, o.Name)
	}
	if !slices.Equal(names, []string{"y", "idsf"}) {
		t.Errorf("outputs %v, want [y idsf]", names)
	}
	if diff := cmp.Diff([]string{"x", "ids", "sr", "h"}, feed.Names(s.Inputs())); diff != "" {
		t.Errorf("inputs (-want +got):\n%s", diff)
	}
}
