package prune

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// TestRecurrentWeights prunes a GRU and an LSTM controller (inputs: the
// sequence and its states) by magnitude and 2:4: the recurrent W and R are
// pruned like the linear layers (exactly half of each, N:M groups along
// the features each gate reads), their bias is left dense as a bias, and
// ONNX Runtime runs the result. Hessian pruning prunes the linear layers
// and names the recurrent ones it leaves.
func TestRecurrentWeights(t *testing.T) {
	for _, cell := range []string{"GRU", "LSTM"} {
		cfg := modelgen.ControllerConfig{Cell: cell, Seed: 4}
		m := modelgen.Controller(cfg)
		data := &dataset.Dataset{Name: "sequences", Arrays: modelgen.Sequences(cfg, 32, 12, 1)}
		for _, opts := range []Options{
			{Method: Magnitude, Sparsity: 0.5, Scope: ScopeLayer},
			{Method: NM, Pattern: Pattern{N: 2, M: 4}},
			{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 32},
		} {
			t.Run(cell+"/"+optsName(opts), func(t *testing.T) {
				out, rep := mustPrune(t, m, opts, data)
				pruned := map[string]float64{}
				for _, l := range rep.Layers {
					pruned[l.Name] = l.Sparsity
				}
				skipped := map[string]Reason{}
				for _, s := range rep.Skipped {
					skipped[s.Name] = s.Reason
				}
				want := map[string]float64{"input.weight": 0.5, "head.weight": 0.5, "rnn.W": 0.5, "rnn.R": 0.5}
				wantSkipped := map[string]Reason{"input.bias": ReasonBias, "head.bias": ReasonBias, "rnn.B": ReasonBias}
				if opts.Method == Hessian {
					delete(want, "rnn.W")
					delete(want, "rnn.R")
					wantSkipped["rnn.W"], wantSkipped["rnn.R"] = ReasonNoCalibration, ReasonNoCalibration
				}
				if diff := cmp.Diff(want, pruned); diff != "" {
					t.Errorf("pruned weights' sparsity (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(wantSkipped, skipped); diff != "" {
					t.Errorf("skipped (-want +got):\n%s", diff)
				}
				if opts.Method == NM {
					for _, w := range out.Weights() {
						if w.Name == "rnn.R" {
							checkNM(t, w, 2, 4)
						}
					}
				}
				fed, err := feed.FromDataset(feed.Inputs(out), data)
				if err != nil {
					t.Fatal(err)
				}
				in, err := fed.Tensors([]int{0, 1, 2})
				if err != nil {
					t.Fatal(err)
				}
				s := session(t, cell, out)
				got, err := s.Run(in)
				if err != nil {
					t.Fatalf("ONNX Runtime does not run the pruned %s: %v", cell, err)
				}
				if y := got[modelgen.ControllerY]; !cmp.Equal(y.Dims, []int64{3, 12, 4}) {
					t.Errorf("y has shape %v", y.Dims)
				}
			})
		}
	}
}

// checkNM checks that every group of m consecutive values along the last
// axis of w keeps at most n non-zeros.
func checkNM(t *testing.T, w *onnx.Weight, n, m int) {
	t.Helper()
	v, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	cols := int(w.Dims[len(w.Dims)-1])
	for row := 0; row < len(v)/cols; row++ {
		for c := 0; c+m <= cols; c += m {
			nz := 0
			for _, x := range v[row*cols+c : row*cols+c+m] {
				if x != 0 {
					nz++
				}
			}
			if nz > n {
				t.Fatalf("%s row %d columns %d..%d: %d non-zeros, want at most %d", w.Name, row, c, c+m-1, nz, n)
			}
		}
	}
}

// Weights computed from constants alone are computed once and pruned; a
// Reshape of an initializer is still followed to it (the model keeps its
// Reshape and the pruned initializer); a weight drawn at run time is
// named with the reason.
func TestComputedWeights(t *testing.T) {
	b := newBuilder("computed")
	x := b.Input("x", 2, 8)
	wt := b.Node("Transpose", "wt", []string{b.weight("w", 6, 8)}, onnx.AttrInts("perm", 1, 0))
	h := b.Node("MatMul", "h", []string{x, wt})
	flat := b.weight("flat", 24)
	r := b.Node("Reshape", "r", []string{flat, b.Init("shape", onnx.NewTensor([]int64{2}, []int64{6, 4}))})
	g := b.Node("MatMul", "g", []string{h, r})
	noise := b.Node("RandomNormalLike", "noise", []string{b.weight("seed", 4, 4)})
	y := b.Node("MatMul", "y", []string{g, noise})
	m := b.Model(13, y)
	out, rep := mustPrune(t, m, Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeLayer}, nil)
	var pruned []string
	for _, l := range rep.Layers {
		pruned = append(pruned, l.Name)
	}
	if diff := cmp.Diff([]string{"flat", "wt"}, pruned); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	var folded []string
	for _, f := range rep.Folded {
		folded = append(folded, f.Name)
	}
	if diff := cmp.Diff([]string{"wt"}, folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	var computed []Skipped
	for _, s := range rep.Skipped {
		if s.Reason == ReasonComputed {
			computed = append(computed, s)
		}
	}
	want := []Skipped{{Name: "noise", Node: "y", OpType: "MatMul", Reason: ReasonComputed, Detail: "drawn at run time by RandomNormalLike noise (not deterministic)"}}
	if diff := cmp.Diff(want, computed); diff != "" {
		t.Errorf("computed weights left (-want +got):\n%s", diff)
	}
	var ops []string
	for _, n := range out.Proto.GetGraph().GetNode() {
		ops = append(ops, n.GetOpType())
	}
	if diff := cmp.Diff([]string{"MatMul", "Reshape", "MatMul", "RandomNormalLike", "MatMul"}, ops); diff != "" {
		t.Errorf("pruned model's nodes (-want +got):\n%s", diff)
	}
}
