package distill

import (
	"math/rand/v2"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// weight is a named initializer of a test model.
type weight struct {
	name string
	dims []int64
	vals []float32
}

// randWeight makes a weight of uniform values in [lo, hi).
func randWeight(rng *rand.Rand, name string, lo, hi float32, dims ...int64) weight {
	w := weight{name: name, dims: dims, vals: make([]float32, onnx.NumElements(dims))}
	for i := range w.vals {
		w.vals[i] = lo + (hi-lo)*rng.Float32()
	}
	return w
}

func ints(name string, v ...int64) *onnx.Tensor { return onnx.NewTensor([]int64{int64(len(v))}, v) }

// testModel makes a model reading x of shape in and writing y, and
// round-trips it through its bytes as a stage would receive it.
func testModel(t testing.TB, opset int64, in []onnx.Dim, weights []weight, intWeights map[string]*onnx.Tensor, nodes ...*onnxpb.NodeProto) *onnx.Model {
	t.Helper()
	g := &onnxpb.GraphProto{Node: nodes}
	g.Input = []*onnxpb.ValueInfoProto{onnx.ValueInfo("x", onnx.Float, in)}
	g.Output = []*onnxpb.ValueInfoProto{onnx.ValueInfo("y", onnx.Float, nil)}
	for _, w := range weights {
		tp, err := onnx.TensorToProto(onnx.NewTensor(w.dims, w.vals), w.name)
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
	}
	for name, w := range intWeights {
		tp, err := onnx.TensorToProto(w, name)
		if err != nil {
			t.Fatal(err)
		}
		g.Initializer = append(g.Initializer, tp)
	}
	m := onnx.NewModel(g, opset)
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m, err = onnx.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Name = "test.onnx"
	return m
}

func randFloats(rng *rand.Rand, n int, lo, hi float32) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = lo + (hi-lo)*rng.Float32()
	}
	return v
}

// softTargets makes n random probability rows of k classes.
func softTargets(rng *rand.Rand, n, k int) []float32 {
	p := make([]float32, n*k)
	for r := 0; r < n; r++ {
		var s float32
		for i := 0; i < k; i++ {
			p[r*k+i] = rng.Float32() + 0.05
			s += p[r*k+i]
		}
		for i := 0; i < k; i++ {
			p[r*k+i] /= s
		}
	}
	return p
}

// graph64 is a student graph in float64 with the loss and its
// gradients, for checking gradients against finite differences.
type graph64 struct {
	net   *net
	vm    G.VM
	loss  G.Value
	grads []G.Value
}

func newGraph64(t testing.TB, p *plan, x []float32, sample []int, n int, soft []float32, labels []int64, lg lossGeom) *graph64 {
	t.Helper()
	nt, err := p.buildForward(n, sample, tensor.Float64)
	if err != nil {
		t.Fatal(err)
	}
	xv := nt.x.Value().Data().([]float64)
	for i, v := range x {
		xv[i] = float64(v)
	}
	pv := make([]float64, len(soft))
	for i, v := range soft {
		pv[i] = float64(v)
	}
	softN := G.NewMatrix(nt.g, tensor.Float64, G.WithShape(n, nt.k), G.WithValue(tensor.New(tensor.WithShape(n, nt.k), tensor.WithBacking(pv))))
	var labelsN *G.Node
	if labels != nil {
		lv := make([]float64, n)
		for i, v := range labels {
			lv[i] = float64(v)
		}
		labelsN = G.NewVector(nt.g, tensor.Float64, G.WithShape(n), G.WithValue(tensor.New(tensor.WithShape(n), tensor.WithBacking(lv))))
	}
	lg.b, lg.k = n, nt.k
	loss, err := distillLoss(lg, nt.logits, softN, labelsN)
	if err != nil {
		t.Fatal(err)
	}
	g := &graph64{net: nt, grads: make([]G.Value, len(p.params))}
	var wrt G.Nodes
	var idx []int
	for i, pn := range nt.params {
		if pn != nil {
			wrt = append(wrt, pn)
			idx = append(idx, i)
		}
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	for j, gn := range grads {
		G.Read(gn, &g.grads[idx[j]])
	}
	G.Read(loss, &g.loss)
	g.vm = G.NewTapeMachine(nt.g)
	t.Cleanup(func() { g.vm.Close() })
	return g
}

func (g *graph64) run(t testing.TB) float64 {
	t.Helper()
	if err := g.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	g.vm.Reset()
	return float64(*g.loss.(*G.F64))
}

// withDefaults is Defaults() changed by set.
func withDefaults(set func(o *Options)) Options {
	o := Defaults()
	set(&o)
	return o
}
