package prune

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// TestTransformer prunes a BERT-style encoder (input_ids, attention_mask,
// token_type_ids, int64) by magnitude, 2:4 and hessian, the hessian
// calibrated on token ids as modelgen writes them, and measures the last
// hidden state against the float model's on other samples. Each of the
// 12 linear layers' MatMul weights loses exactly half (2:4 groups along
// the inputs each output reads), the embeddings, biases and
// normalization parameters stay dense; ONNX Runtime runs the result.
// Hessian pruning, calibrated on other samples, keeps the last hidden
// state closest (cosine 0.993); 2:4 loses the most (0.909).
func TestTransformer(t *testing.T) {
	cfg := modelgen.SmallBERT
	m := modelgen.BERT(cfg)
	calib := &dataset.Dataset{Name: "tokens", Arrays: modelgen.BERTTokens(cfg, 64, 32, 1)}
	held := &dataset.Dataset{Name: "held-out", Arrays: modelgen.BERTTokens(cfg, 16, 32, 2)}
	want := lastHiddenState(t, "bert", m, held)
	cases := []struct {
		opts Options
		// minCosine and maxRelError sit just outside the figures measured
		// (cosine 0.951 / 0.909 / 0.993, relative error 0.314 / 0.428 /
		// 0.120), so a real loss of fidelity fails them.
		minCosine, maxRelError float64
	}{
		{Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeLayer}, 0.94, 0.35},
		{Options{Method: NM, Pattern: Pattern{N: 2, M: 4}}, 0.89, 0.47},
		{Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 64}, 0.99, 0.14},
	}
	for _, tc := range cases {
		t.Run(optsName(tc.opts), func(t *testing.T) {
			out, rep := mustPrune(t, m, tc.opts, calib)
			matmuls := 0
			for _, l := range rep.Layers {
				if l.OpType != "MatMul" {
					continue
				}
				matmuls++
				if l.Sparsity != 0.5 {
					t.Errorf("%s: sparsity %.4f, want 0.5", l.Name, l.Sparsity)
				}
			}
			if matmuls != 12 {
				t.Errorf("%d MatMul weights pruned, want the 12 linear layers': %s", matmuls, rep.Summary())
			}
			if tc.opts.Method == NM {
				for _, w := range out.Weights() {
					for _, l := range rep.Layers {
						if l.Name == w.Name && l.OpType == "MatMul" {
							checkNMInputs(t, w, 2, 4)
						}
					}
				}
			}
			got := lastHiddenState(t, "bert "+optsName(tc.opts), out, held)
			c, rel := cosine(want, got), relError(want, got)
			t.Logf("last hidden state cosine %.4f, relative error %.4f; %s", c, rel, rep.Summary())
			if c < tc.minCosine || rel > tc.maxRelError {
				t.Errorf("last hidden state cosine %.4f, relative error %.4f: want >= %.2f, <= %.2f", c, rel, tc.minCosine, tc.maxRelError)
			}
		})
	}
}

// lastHiddenState runs a BERT on every sample of data in one batch.
func lastHiddenState(t *testing.T, name string, m *onnx.Model, data *dataset.Dataset) []float32 {
	t.Helper()
	y := runAll(t, name, m, data)[modelgen.LastHiddenState]
	if want := []int64{int64(data.Arrays[0].Shape[0]), 32, int64(modelgen.SmallBERT.Hidden)}; !cmp.Equal(y.Dims, want) {
		t.Errorf("%s: last_hidden_state has shape %v", name, y.Dims)
	}
	v, err := y.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// runAll runs m in ONNX Runtime on every sample of data in one batch.
func runAll(t *testing.T, name string, m *onnx.Model, data *dataset.Dataset) map[string]*onnx.Tensor {
	t.Helper()
	fed, err := feed.FromDataset(feed.Inputs(m), data)
	if err != nil {
		t.Fatal(err)
	}
	idx := make([]int, data.Arrays[0].Shape[0])
	for i := range idx {
		idx[i] = i
	}
	in, err := fed.Tensors(idx)
	if err != nil {
		t.Fatal(err)
	}
	out, err := session(t, name, m).Run(in)
	if err != nil {
		t.Fatalf("ONNX Runtime does not run %s: %v", name, err)
	}
	return out
}

// relError is ‖a−b‖/‖a‖.
func relError(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		e := float64(a[i]) - float64(b[i])
		d += e * e
		n += float64(a[i]) * float64(a[i])
	}
	return math.Sqrt(d / n)
}

// checkNMInputs checks that every group of m consecutive values along the
// first axis of a MatMul weight [inputs, outputs] (the inputs one output
// reads) keeps at most n non-zeros.
func checkNMInputs(t *testing.T, w *onnx.Weight, n, m int) {
	t.Helper()
	v, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	rows, cols := int(w.Dims[0]), int(w.Dims[1])
	for col := range cols {
		for r := 0; r+m <= rows; r += m {
			nz := 0
			for i := r; i < r+m; i++ {
				if v[i*cols+col] != 0 {
					nz++
				}
			}
			if nz > n {
				t.Fatalf("%s column %d rows %d..%d: %d non-zeros, want at most %d", w.Name, col, r, r+m-1, nz, n)
			}
		}
	}
}
