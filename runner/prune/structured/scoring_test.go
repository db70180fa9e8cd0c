package structured

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestBiasCorrection: a removed channel that holds a constant (zero
// filter, bias 3, after Relu) costs nothing once the next layer's bias
// absorbs it; without the correction the outputs move.
func TestBiasCorrection(t *testing.T) {
	orttest.Require(t)
	for _, c := range []struct {
		name  string
		build func(b *builder) *onnx.Model
		input []int64
	}{{
		name: "into a conv with a bias",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 5, 5)
			r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 2), b.filled("b1", []int64{4}, 0, 0.1, -0.2, 3, 0.3)})})
			return b.Model(13, b.Node("Conv", "c2", []string{r, b.weight("w2", []int64{2, 4, 1, 1}, 0), b.weight("b2", []int64{2}, 0)}))
		},
		input: []int64{1, 3, 5, 5},
	}, {
		name: "into a conv without a bias",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 5, 5)
			r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 2), b.filled("b1", []int64{4}, 0, 0.1, -0.2, 3, 0.3)})})
			return b.Model(13, b.Node("Conv", "c2", []string{r, b.weight("w2", []int64{2, 4, 1, 1}, 0)}))
		},
		input: []int64{1, 3, 5, 5},
	}, {
		name: "into a matmul followed by its bias",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 2, 8)
			h := b.Node("Add", "h", []string{b.Node("MatMul", "m1", []string{x, b.weight("w1", []int64{8, 4}, 1, 2)}), b.filled("b1", []int64{4}, 0, 0.1, -0.2, 3, 0.3)})
			m2 := b.Node("MatMul", "m2", []string{b.Node("Relu", "r", []string{h}), b.weight("w2", []int64{4, 3}, 0)})
			return b.Model(13, b.Node("Add", "out", []string{m2, b.weight("b2", []int64{3}, 0)}))
		},
		input: []int64{2, 8},
	}, {
		name: "into a gemm",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 2, 8)
			r := b.Node("Relu", "r", []string{b.Node("Gemm", "g1", []string{x, b.weight("w1", []int64{4, 8}, 0, 2), b.filled("b1", []int64{4}, 0, 0.1, -0.2, 3, 0.3)}, onnx.AttrInt("transB", 1))})
			return b.Model(13, b.Node("Gemm", "g2", []string{r, b.weight("w2", []int64{4, 3}, 0)}, onnx.AttrFloat("alpha", 0.5)))
		},
		input: []int64{2, 8},
	}} {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(newBuilder(4))
			in := normalInputs(6, "x", c.input...)
			for _, off := range []bool{false, true} {
				out, rep, err := Prune(context.Background(), m, Options{Fraction: 0.25, NoBiasCorrection: off})
				if err != nil {
					t.Fatal(err)
				}
				if got := rep.Layers[0].Removed; !cmp.Equal(got, []int{2}) {
					t.Fatalf("removed %v, want [2] (the zero filter)", got)
				}
				d := maxDiff(t, out, m, in)
				if !off && d > 1e-5 {
					t.Errorf("with bias correction the outputs moved by %g, want 0", d)
				}
				if off && d < 0.1 {
					t.Errorf("without bias correction the outputs moved by only %g: the test does not test it", d)
				}
			}
		})
	}
}

// TestEntropyCriterion: a dead channel (its Relu never fires) has zero
// entropy and goes first under entropy, though its filter is the largest;
// L1 removes the smallest filter instead.
func TestEntropyCriterion(t *testing.T) {
	orttest.Require(t)
	b := newBuilder(2)
	x := b.Input("x", -1, 3, 4, 4)
	w := b.weight("w1", []int64{4, 3, 1, 1}, 0)
	scale := []float32{10, 0.01, 1, 1}
	mustScale(t, b, w, 0, scale)
	r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, w, b.filled("b1", []int64{4}, 0, -1000, 0, 0, 0)})})
	m := b.Model(13, b.Node("Conv", "c2", []string{r, b.weight("w2", []int64{2, 4, 1, 1}, 0)}))
	calib := normalData(1, 64, 3, 4, 4)
	for _, c := range []struct {
		crit Criterion
		want []int
	}{{Entropy, []int{0}}, {L1, []int{1}}} {
		var progress []int
		out, rep, err := Prune(context.Background(), m, Options{Fraction: 0.25, Criterion: c.crit, Calibration: calib, BatchSize: 10,
			Progress: func(done, total int) { progress = append(progress, done) }})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Layers[0].Removed; !cmp.Equal(got, c.want) {
			t.Errorf("%s removed %v, want %v", c.crit, got, c.want)
		}
		if c.crit == Entropy {
			if rep.Samples != 64 || !cmp.Equal(progress, []int{10, 20, 30, 40, 50, 60, 64}) {
				t.Errorf("entropy scored %d samples with progress %v, want 64 in batches of 10", rep.Samples, progress)
			}
			// The dead channel never reached the next layer: lossless.
			if d := maxDiff(t, out, m, normalInputs(3, "x", 2, 3, 4, 4)); d > 1e-5 {
				t.Errorf("removing the dead channel moved the outputs by %g", d)
			}
		}
	}
}

// mustScale multiplies the values at each index c of axis of weight name by
// scale[c].
func mustScale(t *testing.T, b *builder, name string, axis int, scale []float32) {
	t.Helper()
	for i, tp := range b.Inits {
		if tp.GetName() != name {
			continue
		}
		w, err := onnx.TensorFromProto(tp)
		if err != nil {
			t.Fatal(err)
		}
		vals := w.Data.([]float32)
		outer, size, inner := int(prod(w.Dims[:axis])), int(w.Dims[axis]), int(prod(w.Dims[axis+1:]))
		for o := range outer {
			for c := range size {
				for j := range inner {
					vals[(o*size+c)*inner+j] *= scale[c]
				}
			}
		}
		if b.Inits[i], err = onnx.TensorToProto(w, name); err != nil {
			t.Fatal(err)
		}
	}
}

func TestEntropy(t *testing.T) {
	uniform := make([]float32, 3200)
	for i := range uniform {
		uniform[i] = float32(i%320) + 0.5
	}
	// 990 values spread over [0, 1) and 10 far out: binned over the full
	// range, the 990 would share one bin.
	outliers := make([]float32, 1000)
	for i := range outliers {
		outliers[i] = float32(i) / 990
		if i >= 990 {
			outliers[i] = 1000
		}
	}
	for _, c := range []struct {
		name   string
		values []float32
		bins   int
		want   float64
		within float64
	}{
		{"constant", []float32{2, 2, 2, 2}, 32, 0, 1e-12},
		{"none", nil, 32, 0, 1e-12},
		{"two values", []float32{0, 1, 0, 1}, 32, math.Log(2), 1e-12},
		{"one value apart", []float32{0, 0, 0, 1}, 4, -(0.75*math.Log(0.75) + 0.25*math.Log(0.25)), 1e-12},
		// The 1st and 99th percentiles are 3.5 and 316.5: the end bins
		// take the 32 values beyond them, each of the 32 bins ~100.
		{"uniform over the bins", uniform, 32, math.Log(32), 0.01},
		// Between the percentiles the 990 spread over all bins.
		{"outliers beyond the 99th percentile", outliers, 32, math.Log(32), 0.05},
		// 99% of the values are one number: its percentiles agree, so
		// the full range is binned, and the entropy is that of 990 to 10.
		{"one value but for 1%", append(make([]float32, 990), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 32,
			-(0.99*math.Log(0.99) + 10*0.001*math.Log(0.001)), 1e-12},
	} {
		if got := entropy(c.values, c.bins); math.Abs(got-c.want) > c.within {
			t.Errorf("%s: entropy = %v, want %v within %g", c.name, got, c.want, c.within)
		}
	}
}

// TestGlobalScope: two groups of four channels; in one the filters are
// alike, in the other two are tiny. Layer scope takes one from each,
// global scope both tiny ones.
func TestGlobalScope(t *testing.T) {
	orttest.Require(t)
	b := newBuilder(3)
	x := b.Input("x", 1, 3, 4, 4)
	a := b.Node("Relu", "ra", []string{b.Node("Conv", "ca", []string{x, b.filled("wa", []int64{4, 3, 1, 1}, 0, 1, 1.1, 1.2, 1.3)})})
	c := b.Node("Relu", "rc", []string{b.Node("Conv", "cc", []string{x, b.filled("wc", []int64{4, 3, 1, 1}, 0, 1, 0.01, 1, 0.02)})})
	cat := b.Node("Concat", "cat", []string{a, c}, onnx.AttrInt("axis", 1))
	m := b.Model(13, b.Node("Conv", "out", []string{cat, b.weight("wo", []int64{2, 8, 1, 1}, 0)}))
	for _, s := range []struct {
		scope Scope
		want  map[string][]int
	}{
		{ScopeLayer, map[string][]int{"ca": {0}, "cc": {1}, "out": nil}},
		{ScopeGlobal, map[string][]int{"ca": nil, "cc": {1, 3}, "out": nil}},
	} {
		_, rep, err := Prune(context.Background(), m, Options{Fraction: 0.25, Scope: s.scope})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int{}
		for _, l := range rep.Layers {
			got[l.Node] = l.Removed
		}
		if d := cmp.Diff(s.want, got); d != "" {
			t.Errorf("%s scope removed (-want +got):\n%s", s.scope, d)
		}
	}
}

func TestBadInput(t *testing.T) {
	orttest.Require(t)
	mnist := onnxtest.Model(t, onnxtest.MNIST8)
	b := newBuilder(1)
	relu := b.Model(13, b.Node("Relu", "r", []string{b.Input("x", 1, 4)}))
	// An input of no declared shape: the probe run could not be made,
	// and nothing tells that before the missing layers do.
	shapeless := onnxtest.NewBuilder(1)
	shapeless.Inputs = append(shapeless.Inputs, onnx.ValueInfo("x", onnx.Float, nil))
	unshaped := shapeless.Model(13, shapeless.Node("Relu", "r", []string{"x"}))
	for _, c := range []struct {
		name string
		m    *onnx.Model
		opts Options
		want string
	}{
		{"zero fraction", mnist, Options{}, "fraction 0 must be in (0, 1)"},
		{"whole fraction", mnist, Options{Fraction: 1}, "fraction 1 must be in (0, 1)"},
		{"NaN fraction", mnist, Options{Fraction: math.NaN()}, "must be in (0, 1)"},
		{"unknown criterion", mnist, Options{Fraction: 0.5, Criterion: "l3"}, `criterion "l3" must be one of l1, l2, entropy`},
		{"unknown scope", mnist, Options{Fraction: 0.5, Scope: "all"}, `scope "all" must be layer, global or sensitivity`},
		{"entropy without data", mnist, Options{Fraction: 0.5, Criterion: Entropy}, "entropy needs calibration data"},
		{"calibration of the wrong shape", mnist, Options{Fraction: 0.5, Calibration: normalData(1, 4, 5, 5)}, "calibration data"},
		{"input shape of an unknown input", mnist, Options{Fraction: 0.5, InputShapes: map[string][]int64{"image": {1, 1, 28, 28}}}, `inputShapes names input "image", which is not an input`},
		{"input spec of an unknown input", mnist, Options{Fraction: 0.5, Inputs: map[string]feed.Spec{"image": {}}, InputsField: "evaluation.inputs"},
			`evaluation.inputs names input "image", which is not an input of`},
		{"input spec against the fixed shape", mnist, Options{Fraction: 0.5, Inputs: map[string]feed.Spec{"Input3": {Shape: []int64{1, 32, 32}}}, InputsField: "evaluation.inputs"},
			`evaluation.inputs["Input3"] is [1 32 32]: input "Input3" has the fixed shape [1 1 28 28]`},
		{"nothing to prune", relu, Options{Fraction: 0.5}, "nothing to prune structurally: test has no Conv"},
		{"nothing to prune, unknown shapes", unshaped, Options{Fraction: 0.5}, "nothing to prune structurally: test has no Conv"},
		{"fraction too small", mnist, Options{Fraction: 0.01}, "removes no channel (the largest group has 16 removable channels: raise the fraction); protected: Times212: graph output"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, _, err := Prune(context.Background(), c.m, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error = %v, want one containing %q", err, c.want)
			}
			if nothing := strings.HasPrefix(c.name, "nothing to prune") || c.name == "fraction too small"; nothing != errors.Is(err, ErrNothingPrunable) {
				t.Errorf("errors.Is(%v, ErrNothingPrunable) = %v, want %v", err, !nothing, nothing)
			}
			if out != nil {
				t.Errorf("a model came back with the error")
			}
			if strings.HasPrefix(c.name, "input") && !fault.IsBadInput(err) {
				t.Errorf("%v is not bad input: a runner would retry it", err)
			}
		})
	}
}

// TestReconstructionCriterion: the next layer barely reads channel 0
// (its column of w2 is scaled by 1e-4) though its filter is the largest,
// so removing it costs the least output variance: reconstruction removes
// it, L1 the smallest filter (channel 1). Channel 3 is a constant (zero
// filter, bias 3, after Relu): with bias correction it has no variance to
// lose and goes first at 50%; without, its mean is lost with it and it is
// kept over the barely-read channel.
func TestReconstructionCriterion(t *testing.T) {
	orttest.Require(t)
	b := newBuilder(5)
	x := b.Input("x", -1, 3, 4, 4)
	w1 := b.weight("w1", []int64{4, 3, 1, 1}, 0, 3)
	mustScale(t, b, w1, 0, []float32{10, 0.01, 1, 1})
	r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, w1, b.filled("b1", []int64{4}, 0, 0, 0, 0, 3)})})
	w2 := b.weight("w2", []int64{2, 4, 1, 1}, 0)
	mustScale(t, b, w2, 1, []float32{1e-4, 1, 1, 1})
	m := b.Model(13, b.Node("Conv", "c2", []string{r, w2, b.weight("b2", []int64{2}, 0)}))
	calib := normalData(1, 64, 3, 4, 4)
	for _, c := range []struct {
		crit     Criterion
		fraction float64
		noBias   bool
		want     []int
	}{
		{L1, 0.25, false, []int{3}}, // the zero filter
		{L1, 0.5, false, []int{1, 3}},
		{Reconstruction, 0.25, false, []int{3}},
		{Reconstruction, 0.5, false, []int{0, 3}},
		{Reconstruction, 0.25, true, []int{0}},
	} {
		out, rep, err := Prune(context.Background(), m, Options{Fraction: c.fraction, Criterion: c.crit, Calibration: calib, NoBiasCorrection: c.noBias})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Layers[0].Removed; !cmp.Equal(got, c.want) {
			t.Errorf("%s %v (no bias correction %v): removed %v, want %v", c.crit, c.fraction, c.noBias, got, c.want)
		}
		if c.crit == Reconstruction && rep.Samples != 64 {
			t.Errorf("reconstruction scored on %d samples, want 64", rep.Samples)
		}
		if c.crit == Reconstruction && c.fraction == 0.5 {
			// What went was a constant (absorbed by c2's bias) and a
			// channel c2 reads at 1e-4: the outputs hardly move.
			if d := maxDiff(t, out, m, normalInputs(3, "x", 2, 3, 4, 4)); d > 1e-2 {
				t.Errorf("removing the least-read channels moved the outputs by %g", d)
			}
		}
	}
	if _, _, err := Prune(context.Background(), m, Options{Fraction: 0.25, Criterion: Reconstruction}); err == nil || !strings.Contains(err.Error(), "needs calibration data") {
		t.Errorf("reconstruction without calibration data: %v, want an error asking for it", err)
	}
}

// TestReconstructionGlobal: in a chain of two 4-channel layers, the last
// layer barely reads two of the second layer's channels. Their shares of
// its output variance are tiny, the first layer's channels each carry
// about a quarter of theirs, so the global scope takes both from the
// second layer, where the layer scope takes one from each.
func TestReconstructionGlobal(t *testing.T) {
	orttest.Require(t)
	b := newBuilder(8)
	x := b.Input("x", -1, 3, 4, 4)
	r1 := b.Node("Relu", "r1", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0), b.weight("b1", []int64{4}, 0)})})
	r2 := b.Node("Relu", "r2", []string{b.Node("Conv", "c2", []string{r1, b.weight("w2", []int64{4, 4, 1, 1}, 0), b.weight("b2", []int64{4}, 0)})})
	w3 := b.weight("w3", []int64{2, 4, 1, 1}, 0)
	mustScale(t, b, w3, 1, []float32{1, 1e-4, 1, 1e-4})
	m := b.Model(13, b.Node("Conv", "c3", []string{r2, w3}))
	calib := normalData(2, 64, 3, 4, 4)
	for _, c := range []struct {
		scope  Scope
		c1, c2 int
	}{{ScopeLayer, 1, 1}, {ScopeGlobal, 0, 2}} {
		_, rep, err := Prune(context.Background(), m, Options{Fraction: 0.25, Criterion: Reconstruction, Scope: c.scope, Calibration: calib})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]int{}
		for _, l := range rep.Layers {
			got[l.Node] = l.Removed
		}
		if len(got["c1"]) != c.c1 || len(got["c2"]) != c.c2 {
			t.Errorf("%s: removed %v, want %d from c1 and %d from c2", c.scope, got, c.c1, c.c2)
		}
		if c.scope == ScopeGlobal && !cmp.Equal(got["c2"], []int{1, 3}) {
			t.Errorf("global: c2 lost %v, want the barely-read [1 3]", got["c2"])
		}
	}
}

// TestSampleChannels checks which activation values entropy scoring keeps:
// evenly strided positions of each channel's map, the offset moving from
// one sample to the next, and every row of a channel's block (a flattened
// channel) counted as its positions.
func TestSampleChannels(t *testing.T) {
	iota := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(i)
		}
		return v
	}
	for _, c := range []struct {
		name      string
		t         *onnx.Tensor
		l         *layout
		perSample int
		want      [][]float32
	}{{
		// Two samples of three 2x2 maps; two of four positions each:
		// 0 and 2 in the first sample, 1 and 3 in the second.
		name: "feature maps", t: onnx.NewTensor([]int64{2, 3, 2, 2}, iota(24)), l: &layout{axis: 1, ids: []int32{0, 1, 2}, block: 1}, perSample: 2,
		want: [][]float32{{0, 2, 13, 15}, {4, 6, 17, 19}, {8, 10, 21, 23}},
	}, {
		name: "a flattened channel of two values", t: onnx.NewTensor([]int64{2, 6}, iota(12)), l: &layout{axis: 1, ids: []int32{0, 1, 2}, block: 2}, perSample: 4,
		want: [][]float32{{0, 1, 6, 7}, {2, 3, 8, 9}, {4, 5, 10, 11}},
	}} {
		values := map[string][][]float32{}
		n, err := sampleChannels(c.t, c.l, values, "x", c.perSample, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n != 2 {
			t.Errorf("%s: %d samples, want 2", c.name, n)
		}
		if diff := cmp.Diff(c.want, values["x"]); diff != "" {
			t.Errorf("%s: values (-want +got):\n%s", c.name, diff)
		}
	}
}
