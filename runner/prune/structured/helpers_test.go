package structured

import (
	"context"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// planned runs Prune's steps up to the plan, and returns the pruning and
// the plan before the model is rewritten.
func planned(t testing.TB, m *onnx.Model, opts Options) (*pruning, *plan) {
	t.Helper()
	pr, err := newPruning(context.Background(), m, opts)
	if err != nil {
		t.Fatal(err)
	}
	scores, _, _, err := pr.measure(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pr, pr.a.decide(scores)
}

// masked is the equivalent of the plan without removing anything: every
// layer that mixes channels gets zeros where it reads a removed channel,
// so removed channels reach nothing. The pruned model must compute what
// it computes. Call it before apply.
func masked(t testing.TB, pr *pruning, p *plan) *onnx.Model {
	t.Helper()
	c := pr.a.m.Clone()
	ws := map[string]*onnx.Weight{}
	for _, w := range c.Weights() {
		if w.Graph.Path == "" {
			ws[w.Name] = w
		}
	}
	for _, e := range pr.a.edits {
		if !e.mixing {
			continue
		}
		w := ws[e.node.GetInput()[e.input]]
		tt, err := w.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		vals := tt.Data.([]float32)
		keep := map[int]bool{}
		for _, p := range positions(pr.a.kept(p, e.lay), e.lay.block) {
			keep[p] = true
		}
		outer, size, inner := int(prod(tt.Dims[:e.axis])), int(tt.Dims[e.axis]), int(prod(tt.Dims[e.axis+1:]))
		for o := range outer {
			for q := range size {
				if !keep[q] {
					clear(vals[(o*size+q)*inner : (o*size+q+1)*inner])
				}
			}
		}
		if err := w.Set(tt); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// maxDiff runs both models on the inputs and returns the largest relative
// difference over their outputs.
func maxDiff(t testing.TB, a, b *onnx.Model, inputs map[string]*onnx.Tensor) float64 {
	t.Helper()
	oa := orttest.Run(t, a, inputs)
	ob := orttest.Run(t, b, inputs)
	worst := 0.0
	for name, ta := range oa {
		tb := ob[name]
		if tb == nil {
			t.Fatalf("output %q missing", name)
		}
		worst = math.Max(worst, orttest.MaxDiff(tb, ta))
	}
	return worst
}

// builder makes small models whose right pruning is known: weights are
// normal values except the channels a test zeroes.
type builder struct{ *onnxtest.Builder }

func newBuilder(seed uint64) *builder { return &builder{onnxtest.NewBuilder(seed)} }

// weight adds a float initializer of normal values with the given indices
// along axis all zero.
func (b *builder) weight(name string, dims []int64, axis int, zero ...int) string {
	t := onnx.NewTensor(dims, make([]float32, onnx.NumElements(dims)))
	vals := t.Data.([]float32)
	for i := range vals {
		vals[i] = float32(b.Rand.NormFloat64())
	}
	for _, z := range zero {
		zeroAt(t, axis, z)
	}
	return b.Init(name, t)
}

// positive adds a float initializer of values in [0.5, 1.5) (variances).
func (b *builder) positive(name string, n int64) string {
	vals := make([]float32, n)
	for i := range vals {
		vals[i] = 0.5 + b.Rand.Float32()
	}
	return b.Init(name, onnx.NewTensor([]int64{n}, vals))
}

func (b *builder) ints(name string, v ...int64) string {
	return b.Init(name, onnx.NewTensor([]int64{int64(len(v))}, v))
}

// zeroAt sets every element at index i of axis to zero.
func zeroAt(t *onnx.Tensor, axis, i int) {
	vals := t.Data.([]float32)
	outer, size, inner := int(prod(t.Dims[:axis])), int(t.Dims[axis]), int(prod(t.Dims[axis+1:]))
	for o := range outer {
		clear(vals[(o*size+i)*inner : (o*size+i+1)*inner])
	}
}

// gather is what a weight should hold after pruning: the elements whose
// index along axis is in keep, in order. Written independently of
// sliceAxis, by walking coordinates.
func gather(t *onnx.Tensor, axis int, keep []int) *onnx.Tensor {
	vals := t.Data.([]float32)
	var out []float32
	coord := make([]int64, len(t.Dims))
	pos := map[int64]int{}
	for i, k := range keep {
		pos[int64(k)] = i
	}
	type elem struct {
		key []int64
		v   float32
	}
	var kept []elem
	for i := range vals {
		rem := int64(i)
		for d := len(t.Dims) - 1; d >= 0; d-- {
			coord[d] = rem % t.Dims[d]
			rem /= t.Dims[d]
		}
		j, ok := pos[coord[axis]]
		if !ok {
			continue
		}
		key := append([]int64(nil), coord...)
		key[axis] = int64(j)
		kept = append(kept, elem{key, vals[i]})
	}
	sort.Slice(kept, func(i, j int) bool { return slices.Compare(kept[i].key, kept[j].key) < 0 })
	for _, e := range kept {
		out = append(out, e.v)
	}
	dims := slices.Clone(t.Dims)
	dims[axis] = int64(len(keep))
	return onnx.NewTensor(dims, out)
}

// weights maps the main-graph weights of m by name.
func weights(t testing.TB, m *onnx.Model) map[string]*onnx.Tensor {
	t.Helper()
	out := map[string]*onnx.Tensor{}
	for _, w := range m.Weights() {
		if w.Graph.Path != "" {
			continue
		}
		v, err := w.Tensor()
		if err != nil {
			t.Fatal(err)
		}
		out[w.Name] = v
	}
	return out
}

// normalInputs makes one input of normal values.
func normalInputs(seed uint64, name string, dims ...int64) map[string]*onnx.Tensor {
	r := rand.New(rand.NewPCG(seed, 2))
	v := make([]float32, onnx.NumElements(dims))
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return map[string]*onnx.Tensor{name: onnx.NewTensor(dims, v)}
}

func nodeNamed(m *onnx.Model, name string) *onnxpb.NodeProto {
	for _, n := range m.Proto.GetGraph().GetNode() {
		if n.GetName() == name {
			return n
		}
	}
	return nil
}

// images makes n image-like inputs [n,3,h,w]: a smooth background gradient,
// light blocks and dark text-like strokes, normalized as PaddleOCR does.
func images(n, h, w int, seed uint64) *onnx.Tensor {
	rng := rand.New(rand.NewPCG(seed, seed))
	mean := []float64{0.485, 0.456, 0.406}
	std := []float64{0.229, 0.224, 0.225}
	out := make([]float32, n*3*h*w)
	for s := range n {
		img := make([]float64, 3*h*w)
		base := [3]float64{0.5 + 0.4*rng.Float64(), 0.5 + 0.4*rng.Float64(), 0.5 + 0.4*rng.Float64()}
		gx, gy := rng.Float64()*0.3-0.15, rng.Float64()*0.3-0.15
		for c := range 3 {
			for y := range h {
				for x := range w {
					img[(c*h+y)*w+x] = base[c] + gx*float64(x)/float64(w) + gy*float64(y)/float64(h)
				}
			}
		}
		for range 3 + rng.IntN(4) { // blocks
			y0, x0 := rng.IntN(h), rng.IntN(w)
			bh, bw := 20+rng.IntN(h/3), 20+rng.IntN(w/3)
			col := [3]float64{rng.Float64(), rng.Float64(), rng.Float64()}
			for c := range 3 {
				for y := y0; y < min(h, y0+bh); y++ {
					for x := x0; x < min(w, x0+bw); x++ {
						img[(c*h+y)*w+x] = col[c]
					}
				}
			}
		}
		for range 4 + rng.IntN(5) { // text lines: runs of dark glyph-like strokes
			y0, x0 := rng.IntN(h-20), rng.IntN(w/2)
			gh := 8 + rng.IntN(10)
			x := x0
			for x < min(w-10, x0+60+rng.IntN(w/2)) {
				gw := 3 + rng.IntN(6)
				for y := y0; y < min(h, y0+gh); y++ {
					for xx := x; xx < min(w, x+gw); xx++ {
						if rng.Float64() < 0.8 {
							for c := range 3 {
								img[(c*h+y)*w+xx] = 0.05 + 0.1*rng.Float64()
							}
						}
					}
				}
				x += gw + 2 + rng.IntN(4)
			}
		}
		for c := range 3 {
			for i := range h * w {
				v := math.Min(1, math.Max(0, img[c*h*w+i]))
				out[((s*3)+c)*h*w+i] = float32((v - mean[c]) / std[c])
			}
		}
	}
	return onnx.NewTensor([]int64{int64(n), 3, int64(h), int64(w)}, out)
}

// imageData is a calibration set of n image-like samples at 320x320.
func imageData(n int, seed uint64) *dataset.Dataset {
	x := images(n, 320, 320, seed)
	return &dataset.Dataset{Name: "synthetic", Shape: []int{n, 3, 320, 320}, X: x.Data.([]float32)}
}

// filled adds a float initializer whose elements at index c of axis are
// all vals[c].
func (b *builder) filled(name string, dims []int64, axis int, vals ...float32) string {
	t := onnx.NewTensor(dims, make([]float32, onnx.NumElements(dims)))
	data := t.Data.([]float32)
	outer, size, inner := int(prod(dims[:axis])), int(dims[axis]), int(prod(dims[axis+1:]))
	for o := range outer {
		for c := range size {
			for i := range inner {
				data[(o*size+c)*inner+i] = vals[c]
			}
		}
	}
	return b.Init(name, t)
}

// normalData is a calibration set of n samples of normal values.
func normalData(seed uint64, n int, sample ...int) *dataset.Dataset {
	r := rand.New(rand.NewPCG(seed, 3))
	size := 1
	for _, s := range sample {
		size *= s
	}
	x := make([]float32, n*size)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return &dataset.Dataset{Name: "normal", Shape: append([]int{n}, sample...), X: x}
}
