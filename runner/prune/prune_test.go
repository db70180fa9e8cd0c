package prune

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// mnistSplit splits the committed 1k MNIST sample: the last 200 images
// calibrate, the first 800 score, so no image does both.
func mnistSplit(t testing.TB) (calib, eval *dataset.Dataset) {
	t.Helper()
	d := onnxtest.MNIST(t, dataset.MNISTTest1k)
	part := func(from, to int) *dataset.Dataset {
		shape := append([]int{to - from}, d.SampleShape()...)
		return &dataset.Dataset{Name: d.Name, Shape: shape, X: d.Float32s(from, to), Labels: d.Labels[from:to]}
	}
	return part(800, 1000), part(0, 800)
}

// TestPruneMNIST prunes mnist-8 with every unstructured method and scores
// the result with ONNX Runtime on 800 MNIST test images. The limits leave
// room for the noise of 800 images; the 10,000-image figures are in
// TestMNIST10k.
func TestPruneMNIST(t *testing.T) {
	if testing.Short() {
		t.Skip("scores models with ONNX Runtime")
	}
	calib, eval := mnistSplit(t)
	src := onnxtest.Model(t, onnxtest.MNIST8)
	base := orttest.MNIST8Accuracy(t, src, eval)
	tests := []struct {
		spec Options
		// the accuracy drop must be at most maxDrop, or at least minDrop
		maxDrop, minDrop float64
		sparsity         float64 // of the pruned weights
	}{
		{spec: Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeLayer}, maxDrop: 0.01, sparsity: 0.5},
		// The target is a drop of at most 0.5 points on the 10,000 test
		// images (0.11 in TestMNIST10k); one of these 800 images is 0.125.
		{spec: Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeGlobal}, maxDrop: 0.0075, sparsity: 0.5},
		// At 70% magnitude falls far, hessian hardly.
		{spec: Options{Method: Magnitude, Sparsity: 0.7, Scope: ScopeLayer}, minDrop: 0.05, sparsity: 0.7},
		{spec: Options{Method: Hessian, Sparsity: 0.7, CalibrationSamples: 200}, maxDrop: 0.015, sparsity: 0.7},
		// 2:4 leaves the first Conv (one input channel) dense: 2880 of
		// 5960 weights go.
		{spec: Options{Method: NM, Pattern: Pattern{N: 2, M: 4}}, maxDrop: 0.02, sparsity: 2880.0 / 5960},
		{spec: Options{Method: Hessian, Pattern: Pattern{N: 2, M: 4}, CalibrationSamples: 200}, maxDrop: 0.01, sparsity: 2880.0 / 5960},
	}
	for _, tc := range tests {
		name := optsName(tc.spec)
		t.Run(name, func(t *testing.T) {
			out, rep := mustPrune(t, src, tc.spec, calib)
			acc := orttest.MNIST8Accuracy(t, out, eval)
			drop := base - acc
			t.Logf("%s: accuracy %.4f (source %.4f, drop %.2f points); %s", name, acc, base, 100*drop, rep.Summary())
			if tc.maxDrop > 0 && drop > tc.maxDrop {
				t.Errorf("accuracy drop %.2f points, want at most %.2f", 100*drop, 100*tc.maxDrop)
			}
			if tc.minDrop > 0 && drop < tc.minDrop {
				t.Errorf("accuracy drop %.2f points, expected at least %.2f (magnitude pruning at 70%% should hurt)", 100*drop, 100*tc.minDrop)
			}
			if math.Abs(rep.Achieved-tc.sparsity) > 0.002 {
				t.Errorf("achieved sparsity %.4f, want %.4f", rep.Achieved, tc.sparsity)
			}
			stats, err := out.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if stats.Params-stats.NonZero < rep.Zeros {
				t.Errorf("the model has %d zeros, the report says the pruned weights have %d", stats.Params-stats.NonZero, rep.Zeros)
			}
		})
	}
}

// TestPruneReport checks what the report says about mnist-8 pruned by
// magnitude to 50%: each weight, its consumer, shape and zeros, and the
// biases left dense.
func TestPruneReport(t *testing.T) {
	src := onnxtest.Model(t, onnxtest.MNIST8)
	var progress [][2]int
	out, rep, err := Prune(context.Background(), src, Options{Method: Magnitude, Sparsity: 0.5, Scope: ScopeLayer}, nil,
		func(done, total int) { progress = append(progress, [2]int{done, total}) })
	if err != nil {
		t.Fatal(err)
	}
	type layer struct {
		Name, Node, Op string
		Shape          []int64
		Params, Zeros  int64
	}
	var got []layer
	for _, l := range rep.Layers {
		got = append(got, layer{l.Name, l.Node, l.OpType, l.Shape, l.Params, l.Zeros})
	}
	want := []layer{
		// The MatMul reads Parameter193 [16,4,4,10] through a Reshape.
		{"Parameter193", "Times212", "MatMul", []int64{16, 4, 4, 10}, 2560, 1280},
		{"Parameter87", "Convolution110", "Conv", []int64{16, 8, 5, 5}, 3200, 1600},
		{"Parameter5", "Convolution28", "Conv", []int64{8, 1, 5, 5}, 200, 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("layers (-want +got):\n%s", diff)
	}
	var skipped []string
	for _, s := range rep.Skipped {
		skipped = append(skipped, s.Name+": "+string(s.Reason))
	}
	if diff := cmp.Diff([]string{"Parameter6: bias", "Parameter88: bias", "Parameter194: bias"}, skipped); diff != "" {
		t.Errorf("skipped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][2]int{{1, 3}, {2, 3}, {3, 3}}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	// The source is untouched.
	if v, _ := src.Weight("Parameter87").Float32s(); countZeros(v) != 0 {
		t.Errorf("the source model was modified: %d zeros in Parameter87", countZeros(v))
	}
	// Masks read back from the pruned model match the report.
	masks, err := Masks(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Layers {
		if k := masks[l.Name]; k == nil || k.Digest() != l.MaskDigest || int64(k.Zeros()) != l.Zeros {
			t.Errorf("mask of %s read back does not match the report", l.Name)
		}
	}
}

// TestMasksKeptAcrossTraining plays a later stage: every weight moves
// (as training would move them), ApplyMasks puts the pruned ones back to
// zero, and the recovered masks are the ones pruning left.
func TestMasksKeptAcrossTraining(t *testing.T) {
	src := onnxtest.Model(t, onnxtest.MNIST8)
	pruned, rep := mustPrune(t, src, Options{Method: NM, Pattern: Pattern{N: 2, M: 4}}, nil)
	masks, err := Masks(pruned)
	if err != nil {
		t.Fatal(err)
	}
	// Parameter5 (one input channel) stays dense under 2:4: no mask.
	if len(masks) != 2 || masks["Parameter5"] != nil {
		t.Fatalf("masks for %d weights, want Parameter193 and Parameter87", len(masks))
	}
	trained := pruned.Clone()
	for _, w := range trained.Weights() {
		if !onnx.IsFloat(w.DType) {
			continue
		}
		v, _ := w.Float32s()
		for i := range v {
			v[i] += 0.01
		}
		if err := setValues(w, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := ApplyMasks(trained, masks); err != nil {
		t.Fatal(err)
	}
	again, err := Masks(trained)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rep.Layers {
		if l.Zeros == 0 {
			continue
		}
		if again[l.Name] == nil || again[l.Name].Digest() != l.MaskDigest {
			t.Errorf("%s: mask after training and ApplyMasks differs from the pruned one", l.Name)
		}
	}
	// The kept weights kept their trained values.
	v, _ := trained.Weight("Parameter87").Float32s()
	p, _ := pruned.Weight("Parameter87").Float32s()
	for i := range v {
		if p[i] != 0 && v[i] != p[i]+0.01 {
			t.Fatalf("kept weight %d is %v, want %v", i, v[i], p[i]+0.01)
		}
	}
	// A mask for a weight that is not there, or of another shape, is an
	// error.
	bad := map[string]*Mask{"nope": {Weight: "nope", Dims: []int64{1}, Pruned: []bool{true}}}
	if err := ApplyMasks(trained, bad); err == nil {
		t.Errorf("ApplyMasks accepted a mask for a missing weight")
	}
	bad = map[string]*Mask{"Parameter87": {Weight: "Parameter87", Dims: []int64{2}, Pruned: []bool{true, false}}}
	if err := ApplyMasks(trained, bad); err == nil {
		t.Errorf("ApplyMasks accepted a mask of the wrong shape")
	}
}

func countZeros(v []float32) int {
	n := 0
	for _, x := range v {
		if x == 0 {
			n++
		}
	}
	return n
}

// TestSparseStorage prunes mnist-8 to 80% and stores it sparse: the file
// is at most 40% of the dense pruned file, reads back bit for bit, and ONNX
// Runtime gives the dense model's outputs.
func TestSparseStorage(t *testing.T) {
	orttest.Require(t)
	src := onnxtest.Model(t, onnxtest.MNIST8)
	// Scope layer: every weight 80% sparse (global scope leaves the
	// 200-weight first Conv denser, and dense where sparse is no smaller).
	spec := Options{Method: Magnitude, Sparsity: 0.8, Scope: ScopeLayer}
	dense, _ := mustPrune(t, src, spec, nil)
	spec.Storage = Sparse
	sparse, rep := mustPrune(t, src, spec, nil)
	for _, l := range rep.Layers {
		if l.Stored != Sparse {
			t.Errorf("%s stored %s, want sparse", l.Name, l.Stored)
		}
	}
	db, err := dense.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sparse.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("80%% sparse: dense file %d bytes, sparse file %d bytes (%.1f%%)", len(db), len(sb), 100*float64(len(sb))/float64(len(db)))
	if float64(len(sb)) > 0.40*float64(len(db)) {
		t.Errorf("sparse file is %d bytes, %.1f%% of the dense %d: want at most 40%%", len(sb), 100*float64(len(sb))/float64(len(db)), len(db))
	}
	back, err := onnx.Load(sb)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range dense.Weights() {
		want, _ := w.Tensor()
		got, err := back.Weight(w.Name).Tensor()
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("weight %s read back from the sparse file (-want +got):\n%s", w.Name, diff)
		}
	}
	_, eval := mnistSplit(t)
	ds, ss := session(t, "dense", dense), session(t, "sparse", back)
	for i := 0; i < 50; i++ {
		in := map[string]*onnx.Tensor{"Input3": onnx.NewTensor([]int64{1, 1, 28, 28}, eval.Sample(i))}
		a, err := ds.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ss.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		av, _ := a["Plus214_Output_0"].Float32s()
		bv, _ := b["Plus214_Output_0"].Float32s()
		for j := range av {
			if math.Abs(float64(av[j]-bv[j])) > 1e-3*math.Max(1, math.Abs(float64(av[j]))) {
				t.Fatalf("sample %d: sparse model gives %v, dense %v", i, bv, av)
			}
		}
	}
}

// TestZooMagnitude prunes every kind of prunable weight, in initializers,
// Constant nodes and If branches, to 90%, stores them sparse, and checks
// ONNX Runtime still runs the model.
func TestZooMagnitude(t *testing.T) {
	orttest.Require(t)
	src := zoo(t)
	out, rep := mustPrune(t, src, Options{Method: Magnitude, Sparsity: 0.9, Scope: ScopeLayer, Storage: Sparse}, nil)
	var names []string
	stored := map[string]bool{}
	for _, l := range rep.Layers {
		names = append(names, l.Name)
		if l.Zeros != int64(removed(int(l.Params), 0.9)) {
			t.Errorf("%s: %d of %d zeros, want 90%%", l.Name, l.Zeros, l.Params)
		}
		stored[l.Name] = l.Stored == Sparse
	}
	if diff := cmp.Diff([]string{"Wc", "Wg", "Wm", "We", "Ws", "Wdw", "Wt", "Wf"}, names); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	// The Constant-node weight and the If branches' weights are stored
	// sparse too (those with int64 indices, which subgraphs need).
	for _, n := range []string{"Wdw", "Wt", "Wf", "Wg"} {
		if !stored[n] {
			t.Errorf("%s not stored sparse", n)
		}
	}
	runZoo(t, out)
}

// runZoo runs the zoo model down both If branches.
func runZoo(t *testing.T, m *onnx.Model) {
	t.Helper()
	s := session(t, m.Name, m)
	x := newBuilder("").Uniform(4 * 6 * 6)
	for _, flag := range []bool{true, false} {
		out, err := s.Run(map[string]*onnx.Tensor{
			"X": onnx.NewTensor([]int64{1, 4, 6, 6}, x), "flag": onnx.NewTensor([]int64{}, []bool{flag})})
		if err != nil {
			t.Fatalf("flag %v: %v", flag, err)
		}
		if y, _ := out["Z"].Float32s(); len(y) != 3 {
			t.Fatalf("flag %v: Z has %d values", flag, len(y))
		}
	}
}

// TestZooHessian calibrates the zoo on random inputs: weights in If
// branches cannot be calibrated and stay dense with the reason, the others
// are pruned with their biases updated, and ONNX Runtime runs the result.
func TestZooHessian(t *testing.T) {
	orttest.Require(t)
	src := zoo(t)
	b := newBuilder("")
	var batches []map[string]*onnx.Tensor
	for i := 0; i < 4; i++ {
		batches = append(batches, map[string]*onnx.Tensor{
			"X": onnx.NewTensor([]int64{2, 4, 6, 6}, b.Uniform(2*4*6*6)), "flag": onnx.NewTensor([]int64{}, []bool{true})})
	}
	o, err := Options{Method: Hessian, Sparsity: 0.5, CalibrationSamples: 8}.parse()
	if err != nil {
		t.Fatal(err)
	}
	out, rep, err := unstructured(context.Background(), src, o, feed.NewBatches(batches...), func(int, int) {})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range rep.Layers {
		got[l.Name] = l.Bias
	}
	// Gemm C and Conv B are biases; Bm is added after the MatMul; the
	// depthwise Conv has none; We (its MatMul is followed by another
	// MatMul) has none.
	want := map[string]string{"Wc": "Bc", "Wg": "Cg", "Wm": "Bm", "We": "", "Ws": "", "Wdw": ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pruned weights and their biases (-want +got):\n%s", diff)
	}
	for _, s := range rep.Skipped {
		if (s.Name == "Wt" || s.Name == "Wf") != (s.Reason == ReasonNoCalibration) {
			t.Errorf("%s skipped: %s (%s)", s.Name, s.Reason, s.Detail)
		}
	}
	if rep.Hessian == nil || rep.Hessian.Samples != 8 {
		t.Errorf("hessian stats %+v, want 8 samples", rep.Hessian)
	}
	before, _ := src.Weight("Bc").Float32s()
	after, _ := out.Weight("Bc").Float32s()
	if cmp.Equal(before, after) {
		t.Errorf("the Conv bias was not updated")
	}
	runZoo(t, out)
}

// TestBadInput checks that a model or data that cannot work fails with a
// clear error of the right class, and nothing is returned (options that
// cannot work: TestOptionsErrors).
func TestBadInput(t *testing.T) {
	mnist := onnxtest.Model(t, onnxtest.MNIST8)
	// A model with nothing to prune: Relu(X) + C.
	b := newBuilder("nothing")
	r := b.NamedNode("Relu", "relu", []string{b.Input("X", 1, 4)}, []string{"R"})
	nothing := b.Model(13, b.NamedNode("Add", "add", []string{r, b.weight("C", 4)}, []string{"Y"}))
	wrongShape := &dataset.Dataset{Name: "wrong.npz", Shape: []int{4, 10}, X: make([]float32, 40)}
	tests := []struct {
		name  string
		model *onnx.Model
		opts  Options
		data  *dataset.Dataset
		is    error
		say   string
	}{
		{"nothing prunable", nothing, Options{Method: "magnitude", Sparsity: 0.5}, nil, ErrNothingPrunable, "not the weight input of Conv, ConvTranspose, Gemm, MatMul, LSTM, GRU or RNN: C"},
		{"everything excluded", mnist, Options{Method: "magnitude", Sparsity: 0.5, ExcludeOpTypes: []string{"Conv", "MatMul"}}, nil, ErrNothingPrunable, "excluded by op type: Parameter193, Parameter87, Parameter5"},
		{"hessian without data", mnist, Options{Method: "hessian", Sparsity: 0.5}, nil, ErrCalibration, "spec.dataset"},
		{"calibration of the wrong shape", mnist, Options{Method: "hessian", Sparsity: 0.5}, wrongShape, ErrCalibration, "wrong.npz"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rep, err := Prune(context.Background(), tc.model, tc.opts, tc.data, nil)
			if !errors.Is(err, tc.is) {
				t.Fatalf("error %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.say) {
				t.Errorf("error %q does not say %q", err, tc.say)
			}
			if out != nil || rep != nil {
				t.Errorf("a model or report came back with the error")
			}
		})
	}
}
