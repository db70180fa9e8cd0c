package quantize

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
)

func registered() []string {
	ops := make([]string, 0, len(quantizers))
	for op := range quantizers {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// TestRegistryIsConsistent checks what every entry says against the
// operator table and against its other answers.
func TestRegistryIsConsistent(t *testing.T) {
	ix := newIndex(newBuilder(1).Model(13))
	for _, op := range registered() {
		t.Run(op, func(t *testing.T) {
			q := quantizers[op]
			n := onnx.NewNode(op, "n", []string{"x", "w", "b"}, []string{"y"})
			if _, none := quantizerOf(n).(noQuantizer); none {
				t.Fatalf("quantizerOf(%s) is not its entry", op)
			}
			n.Domain = proto.String("com.example")
			if _, ok := quantizerOf(n).(noQuantizer); !ok {
				t.Errorf("a %s of another domain gets the registered entry", op)
			}
			n.Domain = nil
			l, inTable := onnx.LayerOf(n)
			role := q.static(ix, n)
			if op == "Clip" {
				role = staticActivation // its role depends on a constant min: see TestClipFoldsOnlyAtZero
			}
			_, _, nbitsReason, _ := func() (nbitsForm, Reason, string, error) {
				if !q.quantizesWeight() {
					return q.nbits(nil, nil, weightSlot{})
				}
				return nbitsForm{}, "", "", nil
			}()
			if q.quantizesWeight() {
				if !inTable || l.Quantized {
					t.Errorf("%s quantizes a weight the operator table does not place (layer %+v, found %v)", op, l, inTable)
				}
				if !slices.Contains([]staticRole{staticInteger, staticIntegerFloatOutput, staticWeight}, role) {
					t.Errorf("%s quantizes a weight but its static role is %d", op, role)
				}
				if !q.blocked() {
					t.Errorf("%s quantizes a weight but has no weight-only qdq form", op)
				}
				if role.integer() && l.Data < 0 {
					t.Errorf("%s runs on an integer kernel but has no data input to quantize", op)
				}
				return
			}
			if role != staticNone && role != staticPassThrough && role != staticActivation {
				t.Errorf("%s quantizes no weight but its static role is %d", op, role)
			}
			if inTable && role == staticPassThrough {
				t.Errorf("%s passes quantized values through but the table says it has a weight", op)
			}
			if q.fold() != foldNone {
				t.Errorf("%s absorbs neighbours (fold %d) but quantizes no weight", op, q.fold())
			}
			if q.blocked() || nbitsReason == "" {
				t.Errorf("%s has weight-only forms but quantizes no weight", op)
			}
			if role == staticNone && q.foldConstant() == nil {
				t.Errorf("%s is registered but does nothing under any method", op)
			}
		})
	}
}

// weightOpCase is what each registered weight operator does, method by
// method: the test below builds a one-node model and checks it.
type weightOpCase struct {
	build func(b *builder) (*onnx.Model, string) // the model and its weight's name
	// static: the node ONNX Runtime runs the quantized node as ("" when
	// it stays float with its weight dequantized).
	staticKernel string
	// dynamic: the integer node written.
	dynamicNode string
	// nbits: whether a MatMulNBits form exists.
	nbits bool
	// nbitsOther is the node format matmulnbits reads the weight through
	// when the operator has no MatMulNBits form but another weight-only
	// one ("" when the weight stays float).
	nbitsOther string
	fold       foldRole
	// weights the node reads (a recurrent layer's W and R: two), each
	// through its own DequantizeLinear under dynamic (without an integer
	// kernel) and weight-only qdq; 0 means 1.
	weights int
	// weightOnly4 is the node 4-bit weight-only writes instead of a
	// DequantizeLinear ("" for DequantizeLinear).
	weightOnly4 string
	// inputs feeds the model (random normal values of the first input's
	// shape when nil).
	inputs func(seed uint64) map[string]*onnx.Tensor
}

// inputsOf feeds a case's model.
func (tc weightOpCase) inputsOf(m *onnx.Model, seed uint64) map[string]*onnx.Tensor {
	if tc.inputs != nil {
		return tc.inputs(seed)
	}
	in := m.Proto.GetGraph().GetInput()[0]
	_, dims, _, _ := onnx.TensorType(in)
	return randomBatches(seed, in.GetName(), 1, dims...)[0]
}

var weightOpCases = map[string]weightOpCase{
	"Conv": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 1, 4, 6, 6)
			y := b.Node("Conv", "y", []string{x, b.weight("w", 8, 4, 3, 3), b.weight("b", 8)})
			return b.Model(13, y), "w"
		},
		staticKernel: "QLinearConv", dynamicNode: "ConvInteger", fold: foldChannels,
	},
	"ConvTranspose": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 1, 16, 6, 6) // 16 input channels: enough for 4-bit blocks
			y := b.Node("ConvTranspose", "y", []string{x, b.weight("w", 16, 8, 3, 3), b.weight("b", 8)}, onnx.AttrInts("strides", 2, 2))
			return b.Model(13, y), "w"
		},
		staticKernel: "", dynamicNode: "DequantizeLinear", fold: foldChannels,
	},
	"MatMul": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 2, 32)
			y := b.Node("MatMul", "y", []string{x, b.weight("w", 32, 16)})
			return b.Model(13, y), "w"
		},
		staticKernel: "QLinearMatMul", dynamicNode: "MatMulInteger", nbits: true, fold: foldGemm,
	},
	"Gemm": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 2, 32)
			// A Relu after it stays: its output is not quantized, so
			// there is no QuantizeLinear to fold the Relu into.
			r := b.Node("Relu", "r", []string{b.Node("Gemm", "g", []string{x, b.weight("w", 16, 32), b.weight("b", 16)}, onnx.AttrInt("transB", 1))})
			return b.Model(13, r), "w"
		},
		staticKernel: "QGemm", dynamicNode: "MatMulInteger", nbits: true,
	},
	"LSTM": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 3, 2, 16) // [seq, batch, input]
			y := b.Node("LSTM", "y", []string{x, b.weight("w", 1, 64, 16), b.weight("r", 1, 64, 16), b.weight("b", 1, 128)}, onnx.AttrInt("hidden_size", 16))
			return b.Model(14, y), "w"
		},
		staticKernel: "", dynamicNode: "DynamicQuantizeLSTM", weights: 2,
	},
	"GRU": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 3, 2, 16)
			y := b.Node("GRU", "y", []string{x, b.weight("w", 2, 48, 16), b.weight("r", 2, 48, 16), b.weight("b", 2, 96)},
				onnx.AttrInt("hidden_size", 16), onnx.AttrString("direction", "bidirectional"), onnx.AttrInt("linear_before_reset", 1))
			return b.Model(14, y), "w"
		},
		staticKernel: "", dynamicNode: "DequantizeLinear", weights: 2,
	},
	"RNN": {
		build: func(b *builder) (*onnx.Model, string) {
			x := b.Input("x", 3, 2, 16)
			y := b.Node("RNN", "y", []string{x, b.weight("w", 1, 16, 16), b.weight("r", 1, 16, 16)}, onnx.AttrInt("hidden_size", 16))
			return b.Model(14, y), "w"
		},
		staticKernel: "", dynamicNode: "DequantizeLinear", weights: 2,
	},
	"Gather": {
		build: func(b *builder) (*onnx.Model, string) {
			ids := b.InputOf("ids", onnx.Int64, 2, 5)
			y := b.Node("Gather", "y", []string{b.weight("w", 50, 32), ids})
			return b.Model(13, y), "w"
		},
		inputs: func(seed uint64) map[string]*onnx.Tensor {
			ids := make([]int64, 10)
			for i := range ids {
				ids[i] = int64((int(seed)*7 + i*13) % 50)
			}
			return map[string]*onnx.Tensor{"ids": onnx.NewTensor([]int64{2, 5}, ids)}
		},
		staticKernel: "", dynamicNode: "DequantizeLinear", weightOnly4: "GatherBlockQuantized", nbitsOther: "DequantizeLinear",
	},
}

// TestRegisteredWeightOps quantizes a one-node model of every registered
// weight operator with every method and checks what its entry promises.
func TestRegisteredWeightOps(t *testing.T) {
	var ops []string
	for _, op := range registered() {
		if quantizers[op].quantizesWeight() {
			ops = append(ops, op)
		}
	}
	var want []string
	for op := range weightOpCases {
		want = append(want, op)
	}
	sort.Strings(want)
	if diff := cmp.Diff(want, ops); diff != "" {
		t.Fatalf("registered weight operators (-tested +registered): give each a weightOpCase\n%s", diff)
	}
	for _, op := range ops {
		tc := weightOpCases[op]
		t.Run(op, func(t *testing.T) {
			if got := quantizers[op].fold(); got != tc.fold {
				t.Errorf("fold role %d, want %d", got, tc.fold)
			}
			quantize := func(spec Options) (*onnx.Model, *onnx.Model, *Report, string) {
				m, w := tc.build(newBuilder(1))
				var calib Calibration
				if spec.Method == Static {
					calib = NewBatches(tc.inputsOf(m, 2), tc.inputsOf(m, 3))
				}
				q, r, err := Quantize(context.Background(), m, spec, calib)
				if err != nil {
					t.Fatalf("%s: %v", specName(spec), err)
				}
				return m, q, r, w
			}
			quantized := func(r *Report, w string) bool {
				return slices.ContainsFunc(r.Quantized, func(q QuantizedTensor) bool { return q.Name == w })
			}

			weights := max(tc.weights, 1)
			m, q, r, w := quantize(Options{Method: Dynamic})
			dynamicNodes := 1
			if tc.dynamicNode == "DequantizeLinear" {
				dynamicNodes = weights
			}
			if !quantized(r, w) || len(nodesOf(q, tc.dynamicNode)) != dynamicNodes || len(r.Quantized) != weights {
				t.Errorf("dynamic: weight quantized %v (%d in all), nodes %v; want %d weights read by %d %s", quantized(r, w), len(r.Quantized), opTypes(q), weights, dynamicNodes, tc.dynamicNode)
			}
			checkRuns(t, "dynamic", tc, m, q)

			for _, bits := range []int{8, 4} {
				m, q, r, w = quantize(Options{Method: WeightOnly, Bits: bits, SensitiveLayers: everyWeightAt(bits)})
				node := "DequantizeLinear"
				if bits == 4 && tc.weightOnly4 != "" {
					node = tc.weightOnly4
				}
				if !quantized(r, w) || len(nodesOf(q, node)) != weights {
					t.Errorf("weightOnly qdq %d bits: weight quantized %v, nodes %v; want %d %s", bits, quantized(r, w), opTypes(q), weights, node)
				}
				checkRuns(t, fmt.Sprintf("weightOnly qdq %d bits", bits), tc, m, q)
			}

			spec := Options{Method: WeightOnly, Bits: 8, Format: MatMulNBits}
			m, w = tc.build(newBuilder(1))
			q, r, err := Quantize(context.Background(), m, spec, nil)
			switch {
			case tc.nbits && (err != nil || !quantized(r, w) || len(nodesOf(q, "MatMulNBits")) != 1):
				t.Errorf("matmulnbits: error %v, nodes %v; want the node replaced by MatMulNBits", err, opTypes(q))
			case tc.nbitsOther != "" && (err != nil || !quantized(r, w) || len(nodesOf(q, tc.nbitsOther)) != 1):
				t.Errorf("matmulnbits: error %v, nodes %v; want the weight read through %s", err, opTypes(q), tc.nbitsOther)
			case tc.nbitsOther != "":
				checkRuns(t, "matmulnbits", tc, m, q)
			case !tc.nbits && err == nil:
				t.Errorf("matmulnbits: no error, nodes %v; want ErrNoWeights (%s has no MatMulNBits form)", opTypes(q), op)
			case !tc.nbits && floatReasons(r)[w] != ReasonUnsupportedOp:
				t.Errorf("matmulnbits: weight reason %q, want %q", floatReasons(r)[w], ReasonUnsupportedOp)
			case tc.nbits:
				checkRuns(t, "matmulnbits", tc, m, q)
			}

			// Static, every node on integers (no fallback to float for
			// fidelity, which depends on the machine's kernels: AVX2
			// without VNNI saturates u8s8 products), with the ranges the
			// float model's input and output take.
			if testing.Short() { // the rest needs ONNX Runtime
				return
			}
			o, err := Options{Method: Static}.resolve()
			if err != nil {
				t.Fatal(err)
			}
			m, w = tc.build(newBuilder(1))
			seen := tc.inputsOf(m, 5)
			for name, v := range run(t, m, seen) {
				seen[name] = v
			}
			ix := newIndex(m)
			plan := planStatic(ix, o, weightSlots(ix, o, &Report{own: map[string]bool{}}, map[string]bool{}), &Report{own: map[string]bool{}}, nil)
			ranges := map[string]Range{}
			for _, root := range plan.roots() {
				v, err := seen[root].Float32s()
				if err != nil {
					t.Fatalf("no values for %q: %v", root, err)
				}
				ranges[root] = Range{Min: slices.Min(v), Max: slices.Max(v)}
			}
			q, r, err = buildStatic(m, o, ranges, nil, &Report{Method: Static})
			if err != nil {
				t.Fatal(err)
			}
			if !quantized(r, w) {
				t.Errorf("static: weight not quantized")
			}
			kernels := optimizedOps(t, q)
			if tc.staticKernel != "" && kernels[tc.staticKernel] != 1 {
				t.Errorf("static: ONNX Runtime runs %v, want one %s", kernels, tc.staticKernel)
			}
			if tc.staticKernel == "" && (kernels[op] != 1 || (tc.inputs == nil && floatReasons(r)["x"] != ReasonNoIntegerOp)) {
				t.Errorf("static: ONNX Runtime runs %v, input reason %q; want %s in float (%s)", kernels, floatReasons(r)["x"], op, ReasonNoIntegerOp)
			}
			checkRuns(t, "static", tc, m, q)
		})
	}
}

// checkRuns compares the quantized model's output with the float model's
// in ONNX Runtime, when it is there.
func checkRuns(t *testing.T, what string, tc weightOpCase, m, q *onnx.Model) {
	t.Helper()
	if testing.Short() { // the rest needs ONNX Runtime
		return
	}
	feed := tc.inputsOf(m, 7)
	out := m.Proto.GetGraph().GetOutput()[0].GetName()
	if c := cosine(t, run(t, q, feed)[out], run(t, m, feed)[out]); c < 0.95 {
		t.Errorf("%s: cosine to the float model %.4f, want >= 0.95", what, c)
	}
}

// TestUnregisteredOpsStayFloat: weights of operators without an entry
// (an operator of another domain, a Gather of another axis) stay float
// with the reason, untouched, while the registered MatMul beside them is
// quantized.
func TestUnregisteredOpsStayFloat(t *testing.T) {
	b := newBuilder(1)
	ids := b.InputOf("ids", onnx.Int64, 5)
	emb := b.Node("Gather", "emb", []string{b.weight("table", 8, 10), ids}, onnx.AttrInt("axis", 1))
	x2 := b.Input("x2", 2, 8)
	fused := b.Node("FusedMatMul", "fused", []string{x2, b.weight("wf", 8, 6)}, onnx.AttrFloat("alpha", 2))
	b.Nodes[len(b.Nodes)-1].Domain = proto.String("com.microsoft")
	mm := b.Node("MatMul", "mm", []string{x2, b.weight("wm", 8, 6)})
	m := b.Model(13, emb, fused, mm)
	m.SetOpset("com.microsoft", 1)

	q, r, err := Quantize(context.Background(), m, Options{Method: Dynamic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := floatReasons(r)
	if got["table"] != ReasonShape || got["wf"] != ReasonUnsupportedOp {
		t.Errorf("table: %q, wf: %q; want %q and %q", got["table"], got["wf"], ReasonShape, ReasonUnsupportedOp)
	}
	if len(r.Quantized) != 1 || r.Quantized[0].Name != "wm" {
		t.Errorf("quantized %v, want only wm", r.Quantized)
	}
	for _, w := range []string{"table", "wf"} {
		if diff := cmp.Diff(initializer(t, m, w), initializer(t, q, w)); diff != "" {
			t.Errorf("%s changed (-float +quantized):\n%s", w, diff)
		}
	}
	if testing.Short() { // the rest needs ONNX Runtime
		return
	}
	feed := map[string]*onnx.Tensor{}
	feed["x2"] = randomBatches(4, "x2", 1, 2, 8)[0]["x2"]
	feed["ids"] = onnx.NewTensor([]int64{5}, []int64{0, 3, 9, 3, 1})
	want, have := run(t, m, feed), run(t, q, feed)
	for _, o := range []string{emb, fused} {
		if diff := cmp.Diff(want[o], have[o]); diff != "" {
			t.Errorf("output %s of a float operator changed (-float +quantized):\n%s", o, diff)
		}
	}
}

func TestClipFoldsOnlyAtZero(t *testing.T) {
	for _, tc := range []struct {
		min  float32
		want staticRole
	}{{0, staticActivation}, {-1, staticNone}} {
		b := newBuilder(1)
		x := b.Input("x", 2, 4)
		y := b.Node("Clip", "y", []string{x, b.Init("lo", onnx.NewTensor([]int64{}, []float32{tc.min}))})
		m := b.Model(13, y)
		ix := newIndex(m)
		n := m.Proto.GetGraph().GetNode()[0]
		if got := quantizerOf(n).static(ix, n); got != tc.want {
			t.Errorf("Clip(min %v) static role %d, want %d", tc.min, got, tc.want)
		}
	}
}
