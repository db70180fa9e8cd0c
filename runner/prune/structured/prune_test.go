package structured

import (
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// cut is one slicing of an original weight: the indices kept along axis.
type cut struct {
	axis int
	keep []int
}

// sliced says what a weight of the pruned model must hold: the original
// weight from (its own name when empty) with cuts applied in order.
type sliced struct {
	from string
	cuts []cut
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// graphCase is a small model whose right pruning is known: the channels
// to remove are all zero, so removing them must not change the outputs.
type graphCase struct {
	name    string
	build   func(b *builder) *onnx.Model
	input   []int64
	opts    Options
	removed map[string][]int
	weights map[string]sliced
	ints    map[string][]int64
	groups  map[string]int64
	// protected maps layers to a fragment of why they kept channels.
	protected map[string]string
	err       string
}

func TestPruneGraphs(t *testing.T) {
	orttest.Require(t)
	cases := []graphCase{{
		name: "conv bn relu conv",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 8, 8)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 3, 3}, 0, 1, 3), b.weight("b1", []int64{4}, 0, 1, 3)}, onnx.AttrInts("pads", 1, 1, 1, 1))
			bn := b.Node("BatchNormalization", "bn", []string{c1, b.weight("scale", []int64{4}, 0), b.weight("shift", []int64{4}, 0, 1, 3), b.weight("mean", []int64{4}, 0, 1, 3), b.positive("var", 4)})
			r := b.Node("Relu", "r", []string{bn})
			return b.Model(13, b.Node("Conv", "c2", []string{r, b.weight("w2", []int64{5, 4, 3, 3}, 0), b.weight("b2", []int64{5}, 0)}))
		},
		input:   []int64{1, 3, 8, 8},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {1, 3}, "c2": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{0, 2}}}}, "b1": {cuts: []cut{{0, []int{0, 2}}}},
			"scale": {cuts: []cut{{0, []int{0, 2}}}}, "shift": {cuts: []cut{{0, []int{0, 2}}}},
			"mean": {cuts: []cut{{0, []int{0, 2}}}}, "var": {cuts: []cut{{0, []int{0, 2}}}},
			"w2": {cuts: []cut{{1, []int{0, 2}}}}, "b2": {},
		},
		protected: map[string]string{"c2": "graph output"},
	}, {
		name: "conv flatten gemm",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 2, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 2, 3, 3}, 0, 0, 2)}, onnx.AttrInts("pads", 1, 1, 1, 1))
			f := b.Node("Flatten", "f", []string{b.Node("Relu", "r", []string{c1})}, onnx.AttrInt("axis", 1))
			g := b.Node("Gemm", "g", []string{f, b.weight("wg", []int64{10, 64}, 0), b.weight("bg", []int64{10}, 0)}, onnx.AttrInt("transB", 1))
			return b.Model(13, g)
		},
		input:   []int64{1, 2, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {0, 2}, "g": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{1, 3}}}},
			"wg": {cuts: []cut{{1, append(span(16, 32), span(48, 64)...)}}},
			"bg": {},
		},
	}, {
		name: "reshape with a constant shape into matmul",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 1, 3)})
			rs := b.Node("Reshape", "rs", []string{b.Node("Relu", "r", []string{c1}), b.ints("shape", 1, 64)})
			mm := b.Node("MatMul", "mm", []string{rs, b.weight("wm", []int64{64, 5}, 0)})
			return b.Model(13, b.Node("Add", "add", []string{mm, b.weight("bm", []int64{5}, 0)}))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {1, 3}, "mm": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{0, 2}}}},
			"wm": {cuts: []cut{{0, append(span(0, 16), span(32, 48)...)}}},
			"bm": {},
		},
		ints: map[string][]int64{"shape": {1, 32}},
	}, {
		name: "residual add couples two convs",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 6, 6)
			ca := b.Node("Conv", "ca", []string{x, b.weight("wa", []int64{4, 3, 1, 1}, 0, 1, 2)})
			cb := b.Node("Conv", "cb", []string{x, b.weight("wb", []int64{4, 3, 3, 3}, 0, 1, 2), b.weight("bb", []int64{4}, 0, 1, 2)}, onnx.AttrInts("pads", 1, 1, 1, 1))
			sum := b.Node("Relu", "r", []string{b.Node("Add", "add", []string{ca, cb})})
			return b.Model(13, b.Node("Conv", "cc", []string{sum, b.weight("wc", []int64{3, 4, 1, 1}, 0)}))
		},
		input:   []int64{1, 3, 6, 6},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"ca": {1, 2}, "cb": {1, 2}, "cc": nil},
		weights: map[string]sliced{
			"wa": {cuts: []cut{{0, []int{0, 3}}}}, "wb": {cuts: []cut{{0, []int{0, 3}}}}, "bb": {cuts: []cut{{0, []int{0, 3}}}},
			"wc": {cuts: []cut{{1, []int{0, 3}}}},
		},
	}, {
		name: "concat of two branches",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 5, 5)
			ca := b.Node("Conv", "ca", []string{x, b.weight("wa", []int64{4, 3, 1, 1}, 0, 0, 3)})
			cb := b.Node("Conv", "cb", []string{x, b.weight("wb", []int64{2, 3, 1, 1}, 0, 1)})
			cat := b.Node("Concat", "cat", []string{ca, cb}, onnx.AttrInt("axis", 1))
			return b.Model(13, b.Node("Conv", "cc", []string{cat, b.weight("wc", []int64{3, 6, 1, 1}, 0)}))
		},
		input:   []int64{1, 3, 5, 5},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"ca": {0, 3}, "cb": {1}, "cc": nil},
		weights: map[string]sliced{
			"wa": {cuts: []cut{{0, []int{1, 2}}}}, "wb": {cuts: []cut{{0, []int{0}}}},
			"wc": {cuts: []cut{{1, []int{1, 2, 4}}}},
		},
	}, {
		name: "depthwise conv follows the pruned conv",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 6, 6)
			c1 := b.Node("Relu", "r1", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 2, 3)})})
			dw := b.Node("Conv", "dw", []string{c1, b.weight("wd", []int64{4, 1, 3, 3}, 0), b.weight("bd", []int64{4}, 0, 2, 3)},
				onnx.AttrInt("group", 4), onnx.AttrInts("pads", 1, 1, 1, 1))
			return b.Model(13, b.Node("Conv", "c3", []string{b.Node("Relu", "r2", []string{dw}), b.weight("w3", []int64{2, 4, 1, 1}, 0)}))
		},
		input:   []int64{1, 3, 6, 6},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {2, 3}, "c3": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{0, 1}}}}, "wd": {cuts: []cut{{0, []int{0, 1}}}}, "bd": {cuts: []cut{{0, []int{0, 1}}}},
			"w3": {cuts: []cut{{1, []int{0, 1}}}},
		},
		groups: map[string]int64{"dw": 2},
	}, {
		name: "graph output channels are protected",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0)})
			c2 := b.Node("Conv", "c2", []string{b.Node("Relu", "r1", []string{c1}), b.weight("w2", []int64{6, 4, 1, 1}, 0, 1, 3, 5)})
			return b.Model(13, c1, b.Node("Conv", "c3", []string{b.Node("Relu", "r2", []string{c2}), b.weight("w3", []int64{2, 6, 1, 1}, 0)}))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": nil, "c2": {1, 3, 5}, "c3": nil},
		weights: map[string]sliced{
			"w1": {}, "w2": {cuts: []cut{{0, []int{0, 2, 4}}}}, "w3": {cuts: []cut{{1, []int{0, 2, 4}}}},
		},
		protected: map[string]string{"c1": "graph output", "c3": "graph output"},
	}, {
		name: "matmul units",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 2, 8)
			h := b.Node("Add", "h", []string{b.Node("MatMul", "m1", []string{x, b.weight("w1", []int64{8, 6}, 1, 0, 5)}), b.weight("b1", []int64{6}, 0, 0, 5)})
			return b.Model(13, b.Node("MatMul", "m2", []string{b.Node("Relu", "r", []string{h}), b.weight("w2", []int64{6, 3}, 0)}))
		},
		input:   []int64{2, 8},
		opts:    Options{Fraction: 0.34},
		removed: map[string][]int{"m1": {0, 5}, "m2": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{1, span(1, 5)}}}, "b1": {cuts: []cut{{0, span(1, 5)}}}, "w2": {cuts: []cut{{0, span(1, 5)}}},
		},
	}, {
		name: "conv transpose",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Relu", "r1", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0, 1)})})
			t1 := b.Node("ConvTranspose", "t1", []string{c1, b.weight("wt", []int64{4, 3, 2, 2}, 1, 0, 2), b.weight("bt", []int64{3}, 0, 0, 2)}, onnx.AttrInts("strides", 2, 2))
			return b.Model(13, b.Node("ConvTranspose", "t2", []string{b.Node("Relu", "r2", []string{t1}), b.weight("wt2", []int64{3, 2, 2, 2}, 0)}, onnx.AttrInts("strides", 2, 2)))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {0, 1}, "t1": {0, 2}, "t2": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{2, 3}}}}, "wt": {cuts: []cut{{0, []int{2, 3}}, {1, []int{1}}}}, "bt": {cuts: []cut{{0, []int{1}}}},
			"wt2": {cuts: []cut{{0, []int{1}}}},
		},
	}, {
		name: "a weight read by two layers that lose different channels is copied",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			a := b.Node("Relu", "ra", []string{b.Node("Conv", "ca", []string{x, b.weight("wa", []int64{4, 3, 1, 1}, 0, 1, 3)})})
			c := b.Node("Relu", "rc", []string{b.Node("Conv", "cc", []string{x, b.weight("wc", []int64{4, 3, 1, 1}, 0, 0, 1)})})
			shared := b.weight("ws", []int64{2, 4, 1, 1}, 0)
			return b.Model(13, b.Node("Conv", "oa", []string{a, shared}), b.Node("Conv", "oc", []string{c, shared}))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"ca": {1, 3}, "cc": {0, 1}, "oa": nil, "oc": nil},
		weights: map[string]sliced{
			"wa": {cuts: []cut{{0, []int{0, 2}}}}, "wc": {cuts: []cut{{0, []int{2, 3}}}},
			"ws": {cuts: []cut{{1, []int{0, 2}}}}, "ws_pruned": {from: "ws", cuts: []cut{{1, []int{2, 3}}}},
		},
	}, {
		name: "squeeze-excite couples the gate with the features",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 5, 5)
			a := b.Node("Relu", "ra", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 1, 3)})})
			s1 := b.Node("Relu", "rs", []string{b.Node("Conv", "c2", []string{b.Node("GlobalAveragePool", "gap", []string{a}), b.weight("w2", []int64{2, 4, 1, 1}, 0, 0)})})
			gate := b.Node("Sigmoid", "sg", []string{b.Node("Conv", "c3", []string{s1, b.weight("w3", []int64{4, 2, 1, 1}, 0, 1, 3)})})
			return b.Model(13, b.Node("Conv", "c4", []string{b.Node("Mul", "mul", []string{a, gate}), b.weight("w4", []int64{2, 4, 1, 1}, 0)}))
		},
		input:   []int64{1, 3, 5, 5},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {1, 3}, "c2": {0}, "c3": {1, 3}, "c4": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{0, 2}}}}, "w2": {cuts: []cut{{0, []int{1}}, {1, []int{0, 2}}}},
			"w3": {cuts: []cut{{0, []int{0, 2}}, {1, []int{1}}}}, "w4": {cuts: []cut{{1, []int{0, 2}}}},
		},
	}, {
		name: "flatten by a computed shape (Shape, Gather, Concat) into gemm",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0, 2)})})
			n := b.Node("Gather", "n", []string{b.Node("Shape", "shape", []string{r}), b.Init("zero", onnx.NewTensor([]int64{}, []int64{0}))})
			dims := b.Node("Concat", "dims", []string{b.Node("Unsqueeze", "n1", []string{n, b.ints("axis0", 0)}), b.ints("rest", -1)}, onnx.AttrInt("axis", 0))
			flat := b.Node("Reshape", "flat", []string{r, dims})
			return b.Model(13, b.Node("Gemm", "g", []string{flat, b.weight("wg", []int64{10, 64}, 0)}, onnx.AttrInt("transB", 1)))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {0, 2}, "g": nil},
		weights: map[string]sliced{
			"w1": {cuts: []cut{{0, []int{1, 3}}}}, "wg": {cuts: []cut{{1, append(span(16, 32), span(48, 64)...)}}},
		},
		ints: map[string][]int64{"axis0": {0}, "rest": {-1}},
	}, {
		name: "resize with constant sizes and pad keep the channels",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 3)})})
			up := b.Node("Resize", "up", []string{r, "", "", b.ints("sizes", 1, 4, 8, 8)}, onnx.AttrString("mode", "nearest"))
			pad := b.Node("Pad", "pad", []string{up, b.ints("pads", 0, 0, 1, 1, 0, 0, 1, 1)})
			return b.Model(13, b.Node("Conv", "c2", []string{pad, b.weight("w2", []int64{2, 4, 3, 3}, 0)}))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.25},
		removed: map[string][]int{"c1": {3}, "c2": nil},
		weights: map[string]sliced{"w1": {cuts: []cut{{0, []int{0, 1, 2}}}}, "w2": {cuts: []cut{{1, []int{0, 1, 2}}}}},
		ints:    map[string][]int64{"sizes": {1, 3, 8, 8}, "pads": {0, 0, 1, 1, 0, 0, 1, 1}},
	}, {
		name: "reduce without keepdims moves the channel axis",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			r := b.Node("Relu", "r", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0, 1)})})
			mean := b.Node("ReduceMean", "mean", []string{r}, onnx.AttrInts("axes", 2, 3), onnx.AttrInt("keepdims", 0))
			return b.Model(13, b.Node("Gemm", "g", []string{mean, b.weight("wg", []int64{3, 4}, 0)}, onnx.AttrInt("transB", 1)))
		},
		input:   []int64{1, 3, 4, 4},
		opts:    Options{Fraction: 0.5},
		removed: map[string][]int{"c1": {0, 1}, "g": nil},
		weights: map[string]sliced{"w1": {cuts: []cut{{0, []int{2, 3}}}}, "wg": {cuts: []cut{{1, []int{2, 3}}}}},
	}, {
		name: "softmax over the channels is refused",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			sm := b.Node("Softmax", "sm", []string{b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0)})}, onnx.AttrInt("axis", 1))
			return b.Model(13, b.Node("Conv", "c2", []string{sm, b.weight("w2", []int64{2, 4, 1, 1}, 0)}))
		},
		input: []int64{1, 3, 4, 4},
		opts:  Options{Fraction: 0.5},
		err:   "sm normalizes over the channel axis",
	}, {
		name: "split along the channels is refused",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0)})
			b.Nodes = append(b.Nodes, onnx.NewNode("Split", "split", []string{c1, b.ints("sizes", 2, 2)}, []string{"s0", "s1"}, onnx.AttrInt("axis", 1)))
			return b.Model(13, b.Node("Conv", "o0", []string{"s0", b.weight("w2", []int64{1, 2, 1, 1}, 0)}), b.Node("Conv", "o1", []string{"s1", b.weight("w3", []int64{1, 2, 1, 1}, 0)}))
		},
		input: []int64{1, 3, 4, 4},
		opts:  Options{Fraction: 0.5},
		err:   "split splits the channel axis",
	}, {
		name: "excluded nodes keep what they read",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0)})
			c2 := b.Node("Conv", "c2", []string{c1, b.weight("w2", []int64{4, 4, 1, 1}, 0)})
			return b.Model(13, b.Node("Conv", "c3", []string{c2, b.weight("w3", []int64{2, 4, 1, 1}, 0)}))
		},
		input: []int64{1, 3, 4, 4},
		opts:  Options{Fraction: 0.5, ExcludeNodes: []string{"c2"}},
		err:   "c1: read by c2 (excluded by the options)",
	}, {
		name: "layers under minParams keep their channels",
		build: func(b *builder) *onnx.Model {
			x := b.Input("x", 1, 3, 4, 4)
			c1 := b.Node("Conv", "c1", []string{x, b.weight("w1", []int64{4, 3, 1, 1}, 0, 0)})
			return b.Model(13, b.Node("Conv", "c2", []string{c1, b.weight("w2", []int64{4, 4, 1, 1}, 0)}))
		},
		input: []int64{1, 3, 4, 4},
		opts:  Options{Fraction: 0.5, MinParams: 100},
		err:   "c1: c1 has fewer than minParams=100 parameters",
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.check(t) })
	}
}

func (c graphCase) check(t *testing.T) {
	m := c.build(newBuilder(1))
	orig := weights(t, m)
	out, rep, err := Prune(context.Background(), m, c.opts)
	if c.err != "" {
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Fatalf("Prune error = %v, want one containing %q", err, c.err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	removed := map[string][]int{}
	protected := map[string]string{}
	for _, l := range rep.Layers {
		removed[l.Node] = l.Removed
		if want, ok := c.protected[l.Node]; ok && !strings.Contains(l.Protected, want) {
			t.Errorf("layer %s protected for %q, want %q", l.Node, l.Protected, want)
		}
		protected[l.Node] = l.Protected
	}
	if d := cmp.Diff(c.removed, removed, cmpopts.EquateEmpty()); d != "" {
		t.Errorf("removed channels (-want +got):\n%s", d)
	}
	got := weights(t, out)
	want := map[string]*onnx.Tensor{}
	for name, s := range c.weights {
		from := s.from
		if from == "" {
			from = name
		}
		w := orig[from]
		for _, k := range s.cuts {
			w = gather(w, k.axis, k.keep)
		}
		want[name] = w
	}
	for name := range got {
		if _, ok := want[name]; !ok && onnx.IsFloat(got[name].DType) {
			t.Errorf("unexpected float weight %q %v in the pruned model", name, got[name].Dims)
		}
	}
	for name, w := range want {
		if d := cmp.Diff(w, got[name]); d != "" {
			t.Errorf("weight %q (-want +got):\n%s", name, d)
		}
	}
	for name, v := range c.ints {
		if d := cmp.Diff(v, got[name].Data); d != "" {
			t.Errorf("integer weight %q (-want +got):\n%s", name, d)
		}
	}
	for node, g := range c.groups {
		if n := nodeNamed(out, node); n == nil || onnx.IntAttr(n, "group", 1) != g {
			t.Errorf("node %s group = %d, want %d", node, onnx.IntAttr(n, "group", 1), g)
		}
	}
	// The removed channels were all zero: the outputs must not change.
	in := normalInputs(5, "x", c.input...)
	if d := maxDiff(t, out, m, in); d > 1e-5 {
		t.Errorf("pruned outputs differ from the source's by %g; removing zero channels must be lossless", d)
	}
	if rep.Cosine < 0.99999 {
		t.Errorf("report cosine %v, want 1", rep.Cosine)
	}
}

// A model input whose declared shape is huge (issue 11) fails structured
// pruning as bad input before the probe input is allocated.
func TestHugeInputShapeIsBadInput(t *testing.T) {
	for _, dims := range [][]int64{{1 << 31, 1 << 31, 4, 4}, {1, 3, 1 << 15, 1 << 15}} {
		b := newBuilder(1)
		x := b.Input("x", dims[0], dims[1], dims[2], dims[3])
		w := b.weight("w", []int64{4, 4, 1, 1}, 0)
		m := b.Model(13, b.Node("Conv", "y", []string{x, w}))
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, _, err := Prune(context.Background(), m, Options{Fraction: 0.5})
		runtime.ReadMemStats(&after)
		if !fault.IsBadInput(err) || !strings.Contains(err.Error(), `input "x" would be synthesized at shape`) {
			t.Errorf("dims %v: error %v, want bad input naming the input", dims, err)
		}
		if n := after.TotalAlloc - before.TotalAlloc; n > 16<<20 {
			t.Errorf("dims %v: allocated %d bytes", dims, n)
		}
	}
}
