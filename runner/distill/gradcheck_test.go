package distill

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// opCase is a small model around one operator (or a few): its gradients
// are checked against finite differences and its forward pass against
// ONNX Runtime.
type opCase struct {
	name    string
	opset   int64
	in      []onnx.Dim // declared input shape ("N" for the batch)
	sample  []int
	weights []weight
	ints    map[string]*onnx.Tensor
	nodes   []*onnxpb.NodeProto
	// lo/hi bound the random inputs.
	lo, hi float32
}

func node(op string, in, out []string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
	return onnx.NewNode(op, out[0]+"_node", in, out, attrs...)
}

func opCases() []opCase {
	rng := rand.New(rand.NewPCG(1, 2))
	w := func(name string, lo, hi float32, dims ...int64) weight { return randWeight(rng, name, lo, hi, dims...) }
	n := func(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return node(op, in, []string{out}, attrs...)
	}
	flat := n("Flatten", []string{"h"}, "y")
	mlp := func(act *onnxpb.NodeProto) opCase {
		return opCase{name: act.GetOpType(), opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w1", -1, 1, 6, 8), w("w2", -1, 1, 8, 5)},
			nodes:   []*onnxpb.NodeProto{n("MatMul", []string{"x", "w1"}, "a"), act, n("MatMul", []string{"b", "w2"}, "y")}}
	}
	convPool := func(name string, pool *onnxpb.NodeProto) opCase {
		return opCase{name: name, opset: 13, in: []onnx.Dim{"N", 2, 7, 7}, sample: []int{2, 7, 7},
			weights: []weight{w("w", -1, 1, 3, 2, 2, 2), w("b", -1, 1, 3)},
			nodes:   []*onnxpb.NodeProto{n("Conv", []string{"x", "w", "b"}, "c"), pool, flat}}
	}
	return []opCase{
		{name: "Conv pads strides dilations groups", opset: 13, in: []onnx.Dim{"N", 4, 7, 6}, sample: []int{4, 7, 6},
			weights: []weight{w("w", -1, 1, 6, 2, 3, 3), w("b", -1, 1, 6)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w", "b"}, "h", onnx.AttrInt("group", 2),
				onnx.AttrInts("pads", 1, 0, 2, 1), onnx.AttrInts("strides", 2, 1), onnx.AttrInts("dilations", 1, 2)), flat}},
		{name: "Conv auto_pad SAME_UPPER", opset: 13, in: []onnx.Dim{"N", 2, 5, 5}, sample: []int{2, 5, 5},
			weights: []weight{w("w", -1, 1, 3, 2, 3, 3)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, "h", onnx.AttrString("auto_pad", "SAME_UPPER"),
				onnx.AttrInts("strides", 2, 2)), flat}},
		{name: "Conv depthwise", opset: 13, in: []onnx.Dim{"N", 3, 5, 5}, sample: []int{3, 5, 5},
			weights: []weight{w("w", -1, 1, 3, 1, 3, 3), w("b", -1, 1, 3)},
			nodes:   []*onnxpb.NodeProto{n("Conv", []string{"x", "w", "b"}, "h", onnx.AttrInt("group", 3), onnx.AttrInts("pads", 1, 1, 1, 1)), flat}},
		{name: "Conv input gradient stride 1 groups pads", opset: 13, in: []onnx.Dim{"N", 2, 6, 5}, sample: []int{2, 6, 5},
			weights: []weight{w("w0", -1, 1, 4, 2, 1, 1), w("w", -1, 1, 6, 2, 3, 2), w("b", -1, 1, 6)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w0"}, "c0"),
				n("Conv", []string{"c0", "w", "b"}, "h", onnx.AttrInt("group", 2), onnx.AttrInts("pads", 2, 0, 1, 1)), flat}},
		{name: "Conv input gradient strides dilations", opset: 13, in: []onnx.Dim{"N", 2, 8, 7}, sample: []int{2, 8, 7},
			weights: []weight{w("w0", -1, 1, 3, 2, 1, 1), w("w", -1, 1, 4, 3, 3, 2)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w0"}, "c0"),
				n("Conv", []string{"c0", "w"}, "h", onnx.AttrInts("pads", 1, 1, 0, 1), onnx.AttrInts("strides", 2, 1),
					onnx.AttrInts("dilations", 1, 2)), flat}},
		{name: "Conv input gradient dilations stride 1", opset: 13, in: []onnx.Dim{"N", 2, 8, 7}, sample: []int{2, 8, 7},
			weights: []weight{w("w0", -1, 1, 3, 2, 1, 1), w("w", -1, 1, 4, 3, 2, 3)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w0"}, "c0"),
				n("Conv", []string{"c0", "w"}, "h", onnx.AttrInts("pads", 1, 2, 0, 1), onnx.AttrInts("dilations", 2, 2)), flat}},
		{name: "Conv 1-D", opset: 13, in: []onnx.Dim{"N", 2, 9}, sample: []int{2, 9},
			weights: []weight{w("w", -1, 1, 3, 2, 3)},
			nodes:   []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, "h", onnx.AttrInts("pads", 1, 2), onnx.AttrInts("strides", 2)), flat}},
		{name: "Gemm transB alpha beta", opset: 13, in: []onnx.Dim{"N", 5}, sample: []int{5},
			weights: []weight{w("w", -1, 1, 4, 5), w("c", -1, 1, 4)},
			nodes: []*onnxpb.NodeProto{n("Gemm", []string{"x", "w", "c"}, "y", onnx.AttrInt("transB", 1),
				onnx.AttrFloat("alpha", 0.7), onnx.AttrFloat("beta", 1.3))}},
		{name: "Transpose Gemm transA", opset: 13, in: []onnx.Dim{"N", 5}, sample: []int{5},
			weights: []weight{w("w", -1, 1, 5, 4), w("c", -1, 1, 1, 4)},
			nodes: []*onnxpb.NodeProto{n("Transpose", []string{"x"}, "t", onnx.AttrInts("perm", 1, 0)),
				n("Gemm", []string{"t", "w", "c"}, "y", onnx.AttrInt("transA", 1))}},
		{name: "MatMul 3-D", opset: 13, in: []onnx.Dim{"N", 4, 3}, sample: []int{4, 3},
			weights: []weight{w("w", -1, 1, 3, 5)},
			nodes:   []*onnxpb.NodeProto{n("MatMul", []string{"x", "w"}, "h"), flat}},
		{name: "Add Mul Sub Div broadcast", opset: 13, in: []onnx.Dim{"N", 3, 4}, sample: []int{3, 4},
			weights: []weight{w("a", -1, 1, 4), w("m", -1, 1, 3, 1), w("s", -1, 1, 1, 3, 4), w("d", 1, 2, 4), w("w", -1, 1, 12, 5)},
			nodes: []*onnxpb.NodeProto{n("Add", []string{"x", "a"}, "h1"), n("Mul", []string{"m", "h1"}, "h2"),
				n("Sub", []string{"s", "h2"}, "h3"), n("Div", []string{"h3", "d"}, "h"), n("Flatten", []string{"h"}, "f"),
				n("MatMul", []string{"f", "w"}, "y")}},
		mlp(n("Relu", []string{"a"}, "b")),
		mlp(n("LeakyRelu", []string{"a"}, "b", onnx.AttrFloat("alpha", 0.1))),
		mlp(n("Sigmoid", []string{"a"}, "b")),
		mlp(n("Tanh", []string{"a"}, "b")),
		mlp(n("HardSigmoid", []string{"a"}, "b", onnx.AttrFloat("alpha", 0.3), onnx.AttrFloat("beta", 0.4))),
		{name: "Clip", opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w1", -1, 1, 6, 8), w("w2", -1, 1, 8, 5), {name: "lo", vals: []float32{-0.5}}, {name: "hi", vals: []float32{0.6}}},
			nodes: []*onnxpb.NodeProto{n("MatMul", []string{"x", "w1"}, "a"), n("Clip", []string{"a", "lo", "hi"}, "b"),
				n("MatMul", []string{"b", "w2"}, "y")}},
		{name: "Clip opset 6", opset: 6, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w1", -1, 1, 6, 8), w("w2", -1, 1, 8, 5)},
			nodes: []*onnxpb.NodeProto{n("MatMul", []string{"x", "w1"}, "a"),
				n("Clip", []string{"a"}, "b", onnx.AttrFloat("min", 0), onnx.AttrFloat("max", 0.6)), n("MatMul", []string{"b", "w2"}, "y")}},
		convPool("MaxPool pads strides ceil_mode", n("MaxPool", []string{"c"}, "h", onnx.AttrInts("kernel_shape", 3, 3),
			onnx.AttrInts("strides", 2, 2), onnx.AttrInts("pads", 1, 1, 1, 1), onnx.AttrInt("ceil_mode", 1))),
		convPool("MaxPool dilations", n("MaxPool", []string{"c"}, "h", onnx.AttrInts("kernel_shape", 2, 2),
			onnx.AttrInts("dilations", 2, 2))),
		convPool("AveragePool count_include_pad", n("AveragePool", []string{"c"}, "h", onnx.AttrInts("kernel_shape", 3, 2),
			onnx.AttrInts("strides", 2, 1), onnx.AttrInts("pads", 1, 0, 1, 1), onnx.AttrInt("count_include_pad", 1))),
		convPool("AveragePool exclude pad ceil_mode", n("AveragePool", []string{"c"}, "h", onnx.AttrInts("kernel_shape", 3, 3),
			onnx.AttrInts("strides", 2, 2), onnx.AttrInts("pads", 1, 1, 0, 0), onnx.AttrInt("ceil_mode", 1))),
		convPool("GlobalAveragePool", n("GlobalAveragePool", []string{"c"}, "h")),
		convPool("GlobalMaxPool", n("GlobalMaxPool", []string{"c"}, "h")),
		{name: "BatchNormalization", opset: 13, in: []onnx.Dim{"N", 2, 5, 5}, sample: []int{2, 5, 5},
			weights: []weight{w("w", -1, 1, 3, 2, 3, 3), w("scale", 0.5, 1.5, 3), w("bias", -1, 1, 3), w("mean", -1, 1, 3), w("var", 0.5, 2, 3)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, "c"),
				n("BatchNormalization", []string{"c", "scale", "bias", "mean", "var"}, "h", onnx.AttrFloat("epsilon", 1e-3)), flat}},
		{name: "Reshape Transpose Unsqueeze Squeeze Concat", opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w1", -1, 1, 6, 8), w("w2", -1, 1, 6, 4)},
			ints:    map[string]*onnx.Tensor{"shape": ints("shape", 0, 2, -1), "axes": ints("axes", 1), "shape2": ints("shape2", -1, 2, 2)},
			nodes: []*onnxpb.NodeProto{n("MatMul", []string{"x", "w1"}, "a"), n("Reshape", []string{"a", "shape"}, "b"),
				n("Transpose", []string{"b"}, "c", onnx.AttrInts("perm", 0, 2, 1)), n("Unsqueeze", []string{"c", "axes"}, "d"),
				n("Squeeze", []string{"d", "axes"}, "e"), n("MatMul", []string{"x", "w2"}, "f"), n("Reshape", []string{"f", "shape2"}, "g"),
				n("Concat", []string{"e", "g"}, "h", onnx.AttrInt("axis", 1)), flat}},
		{name: "Shape Gather Unsqueeze Concat Reshape", opset: 13, in: []onnx.Dim{"N", 2, 4, 4}, sample: []int{2, 4, 4},
			weights: []weight{w("w", -1, 1, 3, 2, 3, 3), w("fc", -1, 1, 12, 4)},
			ints:    map[string]*onnx.Tensor{"zero": onnx.NewTensor([]int64{}, []int64{0}), "minus1": ints("minus1", -1), "axes": ints("axes", 0)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, "c"), n("Shape", []string{"c"}, "s"),
				n("Gather", []string{"s", "zero"}, "b"), n("Unsqueeze", []string{"b", "axes"}, "bu"),
				n("Concat", []string{"bu", "minus1"}, "shape", onnx.AttrInt("axis", 0)), n("Reshape", []string{"c", "shape"}, "r"),
				n("MatMul", []string{"r", "fc"}, "y")}},
		{name: "Reshape fixed batch (mnist-8)", opset: 8, in: []onnx.Dim{1, 1, 6, 6}, sample: []int{1, 6, 6},
			weights: []weight{w("w", -1, 1, 2, 1, 3, 3), w("fc", -1, 1, 32, 3)},
			ints:    map[string]*onnx.Tensor{"shape": ints("shape", 1, 32)},
			nodes: []*onnxpb.NodeProto{n("Conv", []string{"x", "w"}, "c"), n("Reshape", []string{"c", "shape"}, "r"),
				n("MatMul", []string{"r", "fc"}, "y")}},
		{name: "Softmax axis -1", opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w", -2, 2, 6, 5), w("s", 1, 4, 5)},
			nodes: []*onnxpb.NodeProto{n("MatMul", []string{"x", "w"}, "a"), n("Softmax", []string{"a"}, "b"),
				n("Mul", []string{"b", "s"}, "y")}},
		{name: "LogSoftmax", opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w", -2, 2, 6, 5), w("s", 0.5, 1, 5)},
			nodes: []*onnxpb.NodeProto{n("MatMul", []string{"x", "w"}, "a"), n("LogSoftmax", []string{"a"}, "b"),
				n("Mul", []string{"b", "s"}, "y")}},
		{name: "Softmax output (loss on its input)", opset: 13, in: []onnx.Dim{"N", 6}, sample: []int{6},
			weights: []weight{w("w", -2, 2, 6, 5)},
			nodes:   []*onnxpb.NodeProto{n("MatMul", []string{"x", "w"}, "a"), n("Softmax", []string{"a"}, "y")}},
		{name: "Softmax opset 11 coerced", opset: 11, in: []onnx.Dim{"N", 3, 4}, sample: []int{3, 4},
			weights: []weight{w("m", -2, 2, 4)},
			nodes: []*onnxpb.NodeProto{n("Mul", []string{"x", "m"}, "a"), n("Softmax", []string{"a"}, "h", onnx.AttrInt("axis", 1)),
				flat}},
	}
}

func TestGradients(t *testing.T) {
	const batch = 3
	for _, c := range opCases() {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			m := testModel(t, c.opset, c.in, c.weights, c.ints, c.nodes...)
			p, err := newPlan(m)
			if err != nil {
				t.Fatal(err)
			}
			lo, hi := c.lo, c.hi
			if lo == 0 && hi == 0 {
				lo, hi = -1, 1
			}
			x := randFloats(rng, batch*prod(c.sample), lo, hi)
			fw, err := newForward(p, batch, c.sample)
			if err != nil {
				t.Fatal(err)
			}
			defer fw.close()
			k := fw.net.k
			labels := []int64{0, int64(k - 1), int64(k / 2)}
			soft := softTargets(rng, batch, k)
			lg := lossGeom{t: 2, alpha: 0.6, labels: true}
			g := newGraph64(t, p, x, c.sample, batch, soft, labels, lg)
			loss := g.run(t)
			// Finite differences cannot be more precise than the rounding
			// of the loss (summed over many terms) divided by the step.
			const h = 1e-6
			noise := 64 * 2.2e-16 * math.Max(1, math.Abs(loss)) / h
			// Copy every gradient before any weight moves: each run
			// overwrites them.
			grads := make([][]float64, len(p.params))
			for i, pr := range p.params {
				if g.grads[i] == nil {
					t.Fatalf("no gradient for %s", pr.w.Name)
				}
				grads[i] = append([]float64(nil), g.grads[i].Data().([]float64)...)
			}
			checkFloat32(t, p, x, c.sample, batch, soft, labels, lg, grads)
			checked := 0
			for i, pr := range p.params {
				ana := grads[i]
				vals := g.net.paramVals[i].Data().([]float64)
				for _, j := range sampleIndices(rng, len(vals), 8) {
					orig := vals[j]
					vals[j] = orig + h
					up := g.run(t)
					vals[j] = orig - h
					down := g.run(t)
					vals[j] = orig
					num := (up - down) / (2 * h)
					if d := math.Abs(num - ana[j]); d > 1e-5*math.Max(math.Abs(num), math.Abs(ana[j]))+noise {
						t.Errorf("d loss / d %s[%d]: analytic %.10g, finite differences %.10g (difference %.2g, allowed %.2g)", pr.w.Name, j, ana[j], num, d, 1e-5*math.Abs(num)+noise)
					}
					checked++
				}
			}
			if checked == 0 {
				t.Fatal("no weight was checked")
			}
			compareWithORT(t, m, fw, x, batch, c.sample)
		})
	}
}

// compareWithORT checks the gorgonia forward pass against ONNX Runtime.
func compareWithORT(t *testing.T, m *onnx.Model, fw *forward, x []float32, n int, sample []int) {
	t.Helper()
	orttest.Require(t)
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	data := &dataset.Dataset{Name: "x", Shape: append([]int{n}, sample...), X: x}
	want, k, err := outputs(context.Background(), m.Name, raw, data, n, 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fw.run(x)
	if err != nil {
		t.Fatal(err)
	}
	if k != fw.net.k || len(got) != len(want) {
		t.Fatalf("ONNX Runtime gives %d values (%d per sample), gorgonia %d (%d per sample)", len(want), k, len(got), fw.net.k)
	}
	if d := maxRelDiff(got, want); d > 1e-4 {
		t.Errorf("forward pass differs from ONNX Runtime by %.3g (relative to the largest output)\n got %v\nwant %v", d, got, want)
	}
}

func prod(s []int) int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// sampleIndices picks up to k distinct indices below n.
func sampleIndices(rng *rand.Rand, n, k int) []int {
	if n <= k {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	}
	return rng.Perm(n)[:k]
}

// checkFloat32 checks the float32 training replica (the vector kernels
// that train, and their pure Go fallback) against the float64 gradients.
func checkFloat32(t *testing.T, p *plan, x []float32, sample []int, n int, soft []float32, labels []int64, lg lossGeom, want [][]float64) {
	t.Helper()
	eachKernelSet(t, func(t *testing.T) { checkFloat32With(t, p, x, sample, n, soft, labels, lg, want) })
}

func checkFloat32With(t *testing.T, p *plan, x []float32, sample []int, n int, soft []float32, labels []int64, lg lossGeom, want [][]float64) {
	t.Helper()
	r, err := newReplica(p, n, sample, lg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.step(x, soft, labels); err != nil {
		t.Fatal(err)
	}
	for i, pr := range p.params {
		got := r.grad(i)
		var scale float64
		for _, v := range want[i] {
			scale = math.Max(scale, math.Abs(v))
		}
		for j, v := range got {
			if d := math.Abs(float64(v) - want[i][j]); d > 1e-4*scale+1e-6 {
				t.Errorf("float32 d loss / d %s[%d] = %.6g, float64 %.6g", pr.w.Name, j, v, want[i][j])
				break
			}
		}
	}
}
