package quantize

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// prunedConvNet is convNet with every third weight of each layer set to 0,
// as an earlier Prune stage leaves it.
func prunedConvNet(seed uint64) *onnx.Model {
	m := convNet(seed)
	for _, w := range m.Weights() {
		if w.Name[0] != 'w' {
			continue
		}
		v, err := w.Float32s()
		if err != nil {
			panic(err)
		}
		for i := 0; i < len(v); i += 3 {
			v[i] = 0
		}
		if err := w.Set(onnx.NewTensor(w.Dims, v)); err != nil {
			panic(err)
		}
	}
	return m
}

// weightsAsRun returns, for each named node, the weight input as ONNX
// Runtime computes it in the quantized model (after DequantizeLinear and
// any Reshape), by making those tensors graph outputs.
func weightsAsRun(t *testing.T, q *onnx.Model, nodes ...string) map[string][]float32 {
	t.Helper()
	probe := q.Clone()
	g := probe.Proto.GetGraph()
	names := map[string]string{}
	for _, n := range g.GetNode() {
		for _, want := range nodes {
			if n.GetName() == want {
				names[want] = n.GetInput()[1]
				g.Output = append(g.Output, onnx.ValueInfo(n.GetInput()[1], onnx.Float, nil))
			}
		}
	}
	out := run(t, probe, randomBatches(1, "x", 1, 1, 3, 8, 8)[0])
	got := map[string][]float32{}
	for node, name := range names {
		v, err := out[name].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		got[node] = v
	}
	return got
}

func TestPruningMasksKept(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	specs := []Options{
		{Method: Static},
		{Method: Static, Symmetric: ptr(false)},
		{Method: Static, Symmetric: ptr(false), PerTensor: true},
		{Method: WeightOnly, Bits: 4, Symmetric: ptr(true)},
		{Method: WeightOnly, Bits: 4, Symmetric: ptr(false)},
		{Method: WeightOnly, Bits: 8, Symmetric: ptr(false)},
	}
	orig := prunedConvNet(1)
	want := map[string][]float32{}
	for _, w := range orig.Weights() {
		v, _ := w.Float32s()
		want[w.Name] = v
	}
	for _, spec := range specs {
		name := fmt.Sprintf("%s bits %d symmetric %v per-channel %v", spec.Method, spec.Bits, spec.Symmetric == nil || *spec.Symmetric, !spec.PerTensor)
		t.Run(name, func(t *testing.T) {
			q, _, err := Quantize(context.Background(), orig, spec, NewBatches(randomBatches(2, "x", 2, 2, 3, 8, 8)...))
			if err != nil {
				t.Fatal(err)
			}
			got := weightsAsRun(t, q, "c1", "c2", "y")
			for node, w := range map[string]string{"c1": "w1", "c2": "w2", "y": "w3"} {
				if len(got[node]) != len(want[w]) {
					t.Fatalf("%s: %d values, want %d", w, len(got[node]), len(want[w]))
				}
				step := maxAbs(want[w]) / 100
				if spec.Bits == 4 {
					step = maxAbs(want[w]) / 7
				}
				for i, v := range want[w] {
					if v == 0 && got[node][i] != 0 {
						t.Fatalf("%s[%d]: pruned to 0, quantized to %v: the pruning mask changed", w, i, got[node][i])
					}
					if d := float32(math.Abs(float64(v - got[node][i]))); d > step {
						t.Fatalf("%s[%d]: float %v, quantized %v: off by more than %v", w, i, v, got[node][i], step)
					}
				}
			}
		})
	}
}

func TestPruningMasksKeptDynamicAndFP16(t *testing.T) {
	orig := prunedConvNet(2)
	zeros := map[string][]bool{}
	for _, w := range orig.Weights() {
		v, _ := w.Float32s()
		z := make([]bool, len(v))
		for i := range v {
			z[i] = v[i] == 0
		}
		zeros[w.Name] = z
	}
	for _, asym := range []bool{false, true} {
		q, _, err := Quantize(context.Background(), orig, Options{Method: Dynamic, Symmetric: ptr(!asym)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// w3 is a transB Gemm weight, stored transposed: check the Convs.
		for _, w := range []string{"w1", "w2"} {
			codes := initializer(t, q, w+"_quantized").Data.([]int8)
			zps := initializer(t, q, w+"_zero_point").Data.([]int8)
			for i, z := range zeros[w] {
				if z && codes[i] != zps[0] {
					t.Fatalf("dynamic symmetric %v: %s[%d] is 0 but its code %d is not the zero point %d", !asym, w, i, codes[i], zps[0])
				}
			}
		}
	}
	q, _, err := Quantize(context.Background(), orig, Options{Method: FP16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"w1", "w2", "w3"} {
		v, err := initializer(t, q, w).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		for i, z := range zeros[w] {
			if z && v[i] != 0 {
				t.Fatalf("fp16: %s[%d] was pruned to 0, is now %v", w, i, v[i])
			}
		}
	}
}

func TestPruningMasksKeptMatMulNBits(t *testing.T) {
	b := newBuilder(3)
	x := b.Input("x", "N", 40)
	v := b.randn(40 * 6)
	for i := 0; i < len(v); i += 2 {
		v[i] = 0
	}
	y := b.Node("MatMul", "y", []string{x, b.Init("w", onnx.NewTensor([]int64{40, 6}, v))})
	m := b.Model(13, y)
	for _, bits := range []int{4, 8} {
		for _, asym := range []bool{false, true} {
			q, _, err := Quantize(context.Background(), m, Options{
				Method: WeightOnly, Bits: bits, Symmetric: ptr(!asym), BlockSize: 16, Format: MatMulNBits,
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// x = identity: the output is the weight MatMulNBits multiplies by.
			eye := make([]float32, 40*40)
			for i := range 40 {
				eye[i*40+i] = 1
			}
			got, err := run(t, q, map[string]*onnx.Tensor{"x": onnx.NewTensor([]int64{40, 40}, eye)})["y"].Float32s()
			if err != nil {
				t.Fatal(err)
			}
			step := maxAbs(v) / 100
			if bits == 4 {
				step = maxAbs(v) / 7
			}
			for i := range v {
				if v[i] == 0 && got[i] != 0 {
					t.Fatalf("bits %d symmetric %v: w[%d] pruned to 0, quantized to %v", bits, !asym, i, got[i])
				}
				if d := float32(math.Abs(float64(v[i] - got[i]))); d > step {
					t.Fatalf("bits %d symmetric %v: w[%d] float %v, quantized %v", bits, !asym, i, v[i], got[i])
				}
			}
		}
	}
}

func maxAbs(v []float32) float32 {
	m := float32(0)
	for _, x := range v {
		m = max(m, float32(math.Abs(float64(x))))
	}
	return m
}

func TestSparseInitializerWeights(t *testing.T) {
	// An earlier Prune stage with storage: sparse leaves 80%-zero weights
	// as sparse initializers.
	m := convNet(5)
	for _, w := range m.Weights() {
		if w.Name[0] != 'w' {
			continue
		}
		v, _ := w.Float32s()
		for i := range v {
			if i%5 != 0 {
				v[i] = 0
			}
		}
		if err := w.Set(onnx.NewTensor(w.Dims, v)); err != nil {
			t.Fatal(err)
		}
	}
	converted, err := m.Sparsify([]string{"w1", "w2", "w3"}, onnx.CompactIndices)
	if err != nil || len(converted) != 3 {
		t.Fatalf("Sparsify: %v, converted %v", err, converted)
	}
	for _, spec := range allMethods {
		if spec.Format == MatMulNBits {
			continue // convNet has no MatMul
		}
		t.Run(specName(spec), func(t *testing.T) {
			if spec.Method == Static {
				orttest.Require(t)
			}
			q, r, err := Quantize(context.Background(), m, spec, NewBatches(randomBatches(1, "x", 2, 2, 3, 8, 8)...))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, w := range r.Quantized {
				got[w.Name] = true
			}
			for _, w := range []string{"w1", "w2", "w3"} {
				if !got[w] {
					t.Errorf("sparse weight %s not quantized (report %+v)", w, r.Quantized)
				}
			}
			in := randomBatches(3, "x", 1, 2, 3, 8, 8)[0]
			if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.98 {
				t.Errorf("cosine to the float model %.4f", c)
			}
		})
	}
}
