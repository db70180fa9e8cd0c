package layerwise

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// chain is x [n, 2] -> MatMul(w1, a Constant node) -> Relu -> MatMul(w2,
// an initializer) -> Relu -> MatMul(w3) -> y: three layers, three
// segments.
func chain(t *testing.T) (*onnx.Model, [][]*onnxpb.NodeProto) {
	t.Helper()
	eye := func(name string) *onnxpb.TensorProto {
		tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{2, 2}, []float32{1, 0, 0, 1}), name)
		if err != nil {
			t.Fatal(err)
		}
		return tp
	}
	m1, m2, m3 := node("MatMul", "h1", "x", "w1"), node("MatMul", "h2", "r1", "w2"), node("MatMul", "y", "r2", "w3")
	g := &onnxpb.GraphProto{
		Node: []*onnxpb.NodeProto{
			onnx.NewNode("Constant", "w1", nil, []string{"w1"}, onnx.AttrTensor("value", eye(""))),
			m1, node("Relu", "r1", "h1"), m2, node("Relu", "r2", "h2"), m3,
		},
		Initializer: []*onnxpb.TensorProto{eye("w2"), eye("w3")},
		Input:       []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, []onnx.Dim{"n", 2})},
		Output:      []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, []onnx.Dim{"n", 2})},
	}
	return onnx.NewModel(g, 17), [][]*onnxpb.NodeProto{{m1}, {m2}, {m3}}
}

// TestWalk walks the chain with a Process that halves each layer's
// weight (w1 held by a Constant node) and records the mean of the inputs
// each segment was fed: propagated, each segment sees the halved layers
// before it (1, 0.5, 0.25); with NoPropagate every segment sees the
// original model's (1, 1, 1), whatever the number of workers, and the
// partials hold each worker's own weights.
func TestWalk(t *testing.T) {
	orttest.Require(t)
	m, layers := chain(t)
	plan, why := Cut(m.Proto.GetGraph(), layers)
	if plan == nil || len(plan.Segments) != 3 {
		t.Fatalf("plan %+v, reason %q: want 3 segments", plan, why)
	}
	batches := []Batch{{"x": onnx.NewTensor([]int64{2, 2}, []float32{1, 1, 1, 1})}, {"x": onnx.NewTensor([]int64{1, 2}, []float32{1, 1})}}
	for _, tc := range []struct {
		noPropagate bool
		workers     int
		done        bool
		seen        []float32
		parts       []int // weights per partial
		handed      [][]string
	}{
		{false, 1, false, []float32{1, 0.5, 0.25}, []int{3}, nil},
		{false, 1, true, []float32{1, 0.5, 0.25}, []int{0}, [][]string{{"w1"}, {"w2"}, {"w3"}}},
		{true, 1, false, []float32{1, 1, 1}, []int{3}, nil},
		{true, 2, false, []float32{1, 1, 1}, []int{1, 2}, nil},
		{true, 3, false, []float32{1, 1, 1}, []int{1, 1, 1}, nil},
	} {
		var mu sync.Mutex
		seen := make([]float32, 3)
		w := &Walk{Model: m, Plan: plan, Wave: Waves(m.Proto.GetGraph(), layers), NoPropagate: tc.noPropagate, Workers: tc.workers}
		var handed [][]string
		if tc.done {
			w.Done = func(p Partial) error {
				handed = append(handed, slices.Sorted(maps.Keys(p)))
				return nil
			}
		}
		parts, st, err := w.Run(context.Background(), batches, func(_ context.Context, sub *onnx.Model, in []Batch, ids []int) (map[string]*onnx.Tensor, error) {
			s := ids[0]
			var sum float32
			n := 0
			for _, b := range in {
				for _, t := range b {
					v, _ := t.Float32s()
					for _, x := range v {
						sum += x
						n++
					}
				}
			}
			mu.Lock()
			seen[s] = sum / float32(n)
			mu.Unlock()
			name := []string{"w1", "w2", "w3"}[s]
			return map[string]*onnx.Tensor{name: onnx.NewTensor([]int64{2, 2}, []float32{0.5, 0, 0, 0.5})}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		var sizes []int
		for _, p := range parts {
			sizes = append(sizes, len(p))
		}
		if d := cmp.Diff(tc.seen, seen); d != "" {
			t.Errorf("propagate %v, %d workers: segment inputs' means (-want +got):\n%s", !tc.noPropagate, tc.workers, d)
		}
		if d := cmp.Diff(tc.parts, sizes); d != "" {
			t.Errorf("propagate %v, %d workers: weights per partial (-want +got):\n%s", !tc.noPropagate, tc.workers, d)
		}
		if d := cmp.Diff(tc.handed, handed); d != "" {
			t.Errorf("propagate %v, Done %v: weights handed over, segment by segment (-want +got):\n%s", !tc.noPropagate, tc.done, d)
		}
		if st.Segments != 3 || st.Runs != 5 {
			t.Errorf("propagate %v: %+v, want 3 segments, 5 runs", !tc.noPropagate, st)
		}
	}
}

// A worker run alone (one index of an Indexed Job) returns the Partial
// Run returns for it, its segments fed the original model's inputs,
// captured by running the segments before its range.
func TestRunWorker(t *testing.T) {
	orttest.Require(t)
	m, layers := chain(t)
	plan, _ := Cut(m.Proto.GetGraph(), layers)
	batches := []Batch{{"x": onnx.NewTensor([]int64{2, 2}, []float32{1, 2, 3, 4})}}
	// process returns each layer's weight scaled by the sum of its inputs:
	// a partial depends on what its segment was fed.
	process := func(_ context.Context, _ *onnx.Model, in []Batch, ids []int) (map[string]*onnx.Tensor, error) {
		var sum float32
		for _, t := range in[0] {
			v, _ := t.Float32s()
			for _, x := range v {
				sum += x
			}
		}
		name := []string{"w1", "w2", "w3"}[ids[0]]
		return map[string]*onnx.Tensor{name: onnx.NewTensor([]int64{1}, []float32{sum})}, nil
	}
	values := func(p Partial) map[string][]float32 {
		out := map[string][]float32{}
		for name, t := range p {
			out[name], _ = t.Float32s()
		}
		return out
	}
	for _, n := range []int{2, 3} {
		w := &Walk{Model: m, Plan: plan, Wave: Waves(m.Proto.GetGraph(), layers), NoPropagate: true, Workers: n}
		parts, _, err := w.Run(context.Background(), batches, process)
		if err != nil {
			t.Fatal(err)
		}
		for k := range n {
			got, _, err := w.RunWorker(context.Background(), batches, process, k)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(values(parts[k]), values(got)); d != "" {
				t.Errorf("worker %d of %d alone (-Run's +RunWorker's):\n%s", k, n, d)
			}
		}
	}
	w := &Walk{Model: m, Plan: plan, Wave: Waves(m.Proto.GetGraph(), layers), Workers: 2}
	if _, _, err := w.RunWorker(context.Background(), batches, process, 0); err == nil {
		t.Error("a worker alone with propagated inputs: no error")
	}
}

// A value is handed to Done after the last segment that reads it: a
// weight the next segment also reads (shared) waits for it.
func TestHandOverWaitsForTheLastReader(t *testing.T) {
	plan := &Plan{Segments: []Segment{
		{Nodes: []*onnxpb.NodeProto{node("MatMul", "h1", "x", "a")}},
		{Nodes: []*onnxpb.NodeProto{node("MatMul", "h2", "h1", "b"), node("Add", "h3", "h2", "a")}},
		{Nodes: []*onnxpb.NodeProto{node("MatMul", "y", "h3", "c")}},
	}}
	var handed [][]string
	w := &Walk{Plan: plan, Done: func(p Partial) error {
		handed = append(handed, slices.Sorted(maps.Keys(p)))
		return nil
	}}
	last := w.lastReads()
	part := Partial{}
	var left [][]string
	for i, names := range [][]string{{"a"}, {"b"}, {"c"}} {
		for _, name := range names {
			part[name] = onnx.NewTensor([]int64{1}, []float32{1})
		}
		if err := w.handOver(part, last, i); err != nil {
			t.Fatal(err)
		}
		left = append(left, slices.Sorted(maps.Keys(part)))
	}
	if d := cmp.Diff([][]string{{"a", "b"}, {"c"}}, handed); d != "" {
		t.Errorf("handed over (-want +got):\n%s", d)
	}
	if d := cmp.Diff([][]string{{"a"}, nil, nil}, left); d != "" {
		t.Errorf("held after each segment (-want +got):\n%s", d)
	}
}

// A process that runs shard 1 of 2 alone (one index of an Indexed Job of
// data shards) captures segment outputs for its own batches only: the
// same values the walk of every shard captures, and nothing for the
// other index's batches, which it would only throw away.
func TestCaptureOwnShardOnly(t *testing.T) {
	orttest.Require(t)
	m, layers := chain(t)
	plan, _ := Cut(m.Proto.GetGraph(), layers)
	var batches []Batch
	for b := range 4 {
		batches = append(batches, Batch{"x": onnx.NewTensor([]int64{1, 2}, []float32{float32(b + 1), 1})})
	}
	values := func(states [][]Batch) [][]map[string][]float32 {
		out := make([][]map[string][]float32, len(states))
		for i, st := range states {
			for _, b := range st {
				vals := map[string][]float32{}
				for name, t := range b {
					vals[name], _ = t.Float32s()
				}
				out[i] = append(out[i], vals)
			}
		}
		return out
	}
	walk := func(mine []int) [][]map[string][]float32 {
		w := &Walk{Model: m, Plan: plan, Wave: Waves(m.Proto.GetGraph(), layers), Shards: 2, Mine: mine}
		states, err := w.Capture(context.Background(), batches)
		if err != nil {
			t.Fatal(err)
		}
		return values(states)
	}
	all, own := walk(nil), walk([]int{1})
	// Shard 1 of 2 owns batches [2, 4); the first segment's inputs are
	// the batches themselves, the same in both.
	for i := 1; i < len(all); i++ {
		if d := cmp.Diff(all[i][2:], own[i][2:]); d != "" {
			t.Errorf("segment %d, shard 1's batches (-every shard +shard 1 alone):\n%s", i+1, d)
		}
		for b := range 2 {
			if len(own[i][b]) != 0 {
				t.Errorf("segment %d, batch %d of shard 0: %v, want nothing captured", i+1, b+1, own[i][b])
			}
		}
	}
}
