package onnx_test

import (
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort"
)

// prune zeroes all but the largest fraction keep of w's values.
func prune(t *testing.T, w *onnx.Weight, keep float64) {
	t.Helper()
	vals, err := w.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	mags := make([]float64, len(vals))
	for i, v := range vals {
		mags[i] = math.Abs(float64(v))
	}
	sort.Float64s(mags)
	cut := mags[int(float64(len(mags))*(1-keep))]
	for i, v := range vals {
		if math.Abs(float64(v)) < cut {
			vals[i] = 0
		}
	}
	if err := w.Set(onnx.NewTensor(w.Dims, vals)); err != nil {
		t.Fatal(err)
	}
}

// TestSparsify prunes mnist-8's two big weights to 10%, stores them as
// sparse initializers (both index layouts) and checks the file shrinks, the
// weights read back bit for bit, and ONNX Runtime gives the dense model's
// outputs.
func TestSparsify(t *testing.T) {
	for _, layout := range []onnx.SparseIndices{onnx.LinearIndices, onnx.CoordinateIndices, onnx.CompactIndices} {
		t.Run(map[onnx.SparseIndices]string{onnx.LinearIndices: "linear", onnx.CoordinateIndices: "coordinates", onnx.CompactIndices: "compact"}[layout], func(t *testing.T) {
			m := onnxtest.Model(t, "mnist-8.onnx")
			prune(t, m.Weight("Parameter193"), 0.1)
			prune(t, m.Weight("Parameter87"), 0.1)
			dense := mustBytes(t, m)
			// ONNX Runtime densifies sparse initializers at load, but then
			// optimizes the graph a little differently: compare unoptimized
			// runs for identical outputs.
			plain := ort.Options{Optimization: ort.OptimizeDisabled}
			want := run(t, session(t, "pruned", dense, plain), mnistInput(t))
			before := map[string]*onnx.Tensor{}
			for _, w := range m.Weights() {
				tt, _ := w.Tensor()
				before[w.Name] = tt
			}
			// Parameter6 is small and dense: storing it sparse would not pay.
			got, err := m.Sparsify([]string{"Parameter193", "Parameter87", "Parameter6"}, layout)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"Parameter193", "Parameter87"}, got); diff != "" {
				t.Errorf("converted (-want +got):\n%s", diff)
			}
			sparse := mustBytes(t, m)
			// 10% non-zeros: linear indices cost 8 bytes per value, [NNZ, 4]
			// coordinates 32.
			limit := len(dense) / 2
			switch layout {
			case onnx.CoordinateIndices:
				limit = len(dense) * 95 / 100
			case onnx.CompactIndices:
				// int16 offsets: 6 bytes per value instead of 12.
				limit = len(dense) * 30 / 100
			}
			if len(sparse) > limit {
				t.Errorf("sparse model is %d bytes, dense %d: expected at most %d", len(sparse), len(dense), limit)
			}
			if layout == onnx.CompactIndices {
				// 2560 and 3200 elements: offsets fit int16.
				for _, st := range m.Proto.GetGraph().GetSparseInitializer() {
					if dt := onnx.DataType(st.GetIndices().GetDataType()); dt != onnx.Int16 {
						t.Errorf("compact indices of %s are %v, want INT16", st.GetValues().GetName(), dt)
					}
				}
			}
			back := mustLoad(t, sparse)
			for _, w := range back.Weights() {
				tt, err := w.Tensor()
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(before[w.Name], tt); diff != "" {
					t.Errorf("weight %s read back (-want +got):\n%s", w.Name, diff)
				}
				wantKind := onnx.KindInitializer
				if w.Name == "Parameter193" || w.Name == "Parameter87" {
					wantKind = onnx.KindSparseInitializer
				}
				if w.Kind != wantKind {
					t.Errorf("weight %s is %s, want %s", w.Name, w.Kind, wantKind)
				}
			}
			out := run(t, session(t, "sparse", sparse, plain), mnistInput(t))
			sameOutputs(t, "sparse initializers", want, out, 0)

			// Saved with external data, the sparse model still loads in
			// ONNX Runtime and reads back the same.
			dir := t.TempDir()
			path := filepath.Join(dir, "sparse.onnx")
			if err := back.SaveFile(path, onnx.SaveOptions{ExternalData: true, ExternalMinBytes: 64}); err != nil {
				t.Fatal(err)
			}
			saved, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			ext := run(t, session(t, "sparse-external", saved, ort.Options{ExternalDataDir: dir, Optimization: ort.OptimizeDisabled}), mnistInput(t))
			sameOutputs(t, "sparse + external data", want, ext, 0)
		})
	}
}

// TestSparsifyConstantAndSubgraph stores a Constant-node weight of ppocr-det
// and a subgraph initializer sparse.
func TestSparsifyConstantAndSubgraph(t *testing.T) {
	m := onnxtest.Model(t, "ppocr-det.onnx")
	var conv *onnx.Weight
	for _, w := range m.Weights() {
		if w.Uses[0].OpType() == "Conv" && w.NumElements() > 1000 {
			conv = w
			break
		}
	}
	prune(t, conv, 0.2)
	in := map[string]*onnx.Tensor{"x": ppocrInput(1)}
	plain := ort.Options{Optimization: ort.OptimizeDisabled}
	want := run(t, session(t, "ppocr-pruned", mustBytes(t, m), plain), in)
	if got, err := m.Sparsify([]string{conv.Name}, onnx.LinearIndices); err != nil || len(got) != 1 {
		t.Fatalf("Sparsify(%s) = %v, %v", conv.Name, got, err)
	}
	if w := m.Weight(conv.Name); w == nil || w.Kind != onnx.KindSparseInitializer {
		t.Fatalf("weight %s after Sparsify: %+v", conv.Name, w)
	}
	got := run(t, session(t, "ppocr-sparse", mustBytes(t, m), plain), in)
	sameOutputs(t, "sparse constant", want, got, 0)

	sub := subgraphModel()
	w2 := sub.Weights()[4]
	if err := w2.Set(onnx.NewTensor(w2.Dims, []float32{0, 0})); err != nil {
		t.Fatal(err)
	}
	if got, err := sub.Sparsify([]string{"W2"}, onnx.CoordinateIndices); err != nil || len(got) != 1 {
		t.Fatalf("Sparsify(W2) = %v, %v", got, err)
	}
	out := run(t, session(t, "subgraph-sparse", mustBytes(t, sub), ort.Options{}), map[string]*onnx.Tensor{
		"cond": onnx.NewTensor([]int64{}, []bool{false}), "x": onnx.NewTensor([]int64{1, 2}, []float32{1, 2})})
	if diff := cmp.Diff([]float32{1, 2}, out["y"].Data); diff != "" {
		t.Errorf("else branch with an all-zero sparse W2 (-want +got):\n%s", diff)
	}
	if _, err := sub.Sparsify([]string{"nope"}, onnx.LinearIndices); err == nil || !strings.Contains(err.Error(), `no weights named ["nope"]`) {
		t.Errorf("unknown name: error = %v", err)
	}
}
