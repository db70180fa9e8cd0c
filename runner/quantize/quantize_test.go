package quantize

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

var allMethods = []Options{
	{Method: Static},
	{Method: Dynamic},
	{Method: WeightOnly, Bits: 4},
	{Method: WeightOnly, Bits: 8, Format: MatMulNBits},
	{Method: FP16},
}

func specName(s Options) string {
	name := string(s.Method)
	if s.Bits != 0 {
		name += "-" + string(rune('0'+s.Bits))
	}
	if s.Format != "" {
		name += "-" + string(s.Format)
	}
	return name
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		say  string
	}{
		{"no method", Options{}, `quantize.method "": want dynamic, static, weightOnly or fp16`},
		{"unknown method", Options{Method: "magic"}, `quantize.method "magic": want dynamic, static, weightOnly or fp16`},
		{"4 bits static", Options{Method: Static, Bits: 4}, "quantize.bits 4 is only supported with method weightOnly, not static"},
		{"6 bits", Options{Method: WeightOnly, Bits: 6}, "quantize.bits 6: want 4 or 8"},
		{"block size 48", Options{Method: WeightOnly, BlockSize: 48}, "quantize.blockSize 48: want a power of two from 16 to 256"},
		{"block size 512", Options{Method: WeightOnly, BlockSize: 512}, "quantize.blockSize 512: want a power of two from 16 to 256"},
		{"matmulnbits dynamic", Options{Method: Dynamic, Format: MatMulNBits}, "quantize.format matmulnbits is only supported with method weightOnly, not dynamic"},
		{"unknown format", Options{Method: WeightOnly, Format: "gguf"}, `quantize.format "gguf": want qdq or matmulnbits`},
		{"gptq static", Options{Method: Static, Algorithm: GPTQ}, "quantize.algorithm gptq is only supported with method weightOnly, not static"},
		{"unknown algorithm", Options{Method: WeightOnly, Algorithm: "awq"}, `quantize.algorithm "awq": want rtn or gptq`},
		{"dampening above 1", Options{Method: WeightOnly, Algorithm: GPTQ, GPTQDampening: 2}, "quantize.gptqDampening 2: want a fraction in (0, 1]"},
		{"smoothQuant dynamic", Options{Method: Dynamic, SmoothQuant: &SmoothQuantOptions{}}, "quantize.smoothQuant is only supported with method static, not dynamic"},
		{"smoothQuant alpha 1.5", Options{Method: Static, SmoothQuant: &SmoothQuantOptions{Alpha: 1.5}}, "quantize.smoothQuant.alpha 1.5: want a fraction in (0, 1]"},
		{"int4 activations", Options{Method: Static, Activation: Int4}, "quantize.activation int4: want uint8 or int8"},
		{"bad percentile", Options{Method: Static, Calibration: CalibrationOptions{Method: CalibrationPercentile, Percentile: 30}}, "calibration.percentile 30: want a number in [50, 100]"},
		{"bad calibration", Options{Method: Static, Calibration: CalibrationOptions{Method: "kl"}}, `calibration.method "kl": want minmax, percentile or entropy`},
		{"negative samples", Options{Method: Static, Calibration: CalibrationOptions{Samples: -1}}, "quantize.calibration.samples -1: want a positive number"},
		{"layer pod rtn", Options{Method: WeightOnly, Calibration: CalibrationOptions{OriginalLayerInputs: true, Layers: 2, LayerPod: &exchange.Storage{Index: 1, Of: 2}}},
			"parallelism.layers 2: only quantize.algorithm gptq runs as layer pods, not rtn"},
		{"layer pod index 2 of 2", Options{Method: WeightOnly, Algorithm: GPTQ, Calibration: CalibrationOptions{OriginalLayerInputs: true, Layers: 2, LayerPod: &exchange.Storage{Index: 2, Of: 2}}},
			"parallelism.layers 2: this runner is index 2 of an Indexed Job of 2 layer pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			verr := tt.opts.Validate()
			q, r, err := Quantize(context.Background(), convNet(1), tt.opts, nil)
			if !errors.Is(err, ErrSpec) || err.Error() != "invalid quantize spec: "+tt.say {
				t.Errorf("error %v, want ErrSpec saying %q", err, tt.say)
			}
			if verr == nil || verr.Error() != err.Error() {
				t.Errorf("Validate says %v, Quantize %v", verr, err)
			}
			if q != nil || r != nil {
				t.Errorf("a model or report came back with the error")
			}
		})
	}
}

// TestOptionsDefaults: the zero value of each option is its documented
// default.
func TestOptionsDefaults(t *testing.T) {
	got, err := Options{Method: WeightOnly}.resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := &options{
		method: WeightOnly, bits: DefaultBits, perChannel: true, symmetric: false, activation: UInt8,
		blockSize: DefaultBlockSize, format: QDQ, algorithm: RTN, damp: DefaultGPTQDampening,
		calib:     CalibrationOptions{Method: CalibrationMinMax, Samples: DefaultCalibrationSamples},
		exclNodes: map[string]bool{}, exclOps: map[string]bool{},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(options{})); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	// Weight-only blocks get zero points by default; the others' weights
	// are symmetric unless told.
	for _, m := range []Method{Dynamic, Static, FP16} {
		if o, err := (Options{Method: m}).resolve(); err != nil || !o.symmetric {
			t.Errorf("%s: symmetric %v (error %v), want true by default", m, o != nil && o.symmetric, err)
		}
	}
	all := Options{Method: WeightOnly, Bits: 4, PerTensor: true, Symmetric: ptr(false), Activation: Int8, BlockSize: 64,
		Format: MatMulNBits, SensitiveLayers: SensitiveFloat, Algorithm: GPTQ, GPTQDampening: 0.05, Calibration: CalibrationOptions{Method: CalibrationEntropy, Samples: 10, Percentile: 99},
		Float16IO: true, ExcludeNodes: []string{"n"}, ExcludeOpTypes: []string{"Gemm"}}
	if got, err = all.resolve(); err != nil {
		t.Fatal(err)
	}
	want = &options{
		method: WeightOnly, bits: 4, perChannel: false, symmetric: false, activation: Int8, blockSize: 64, format: MatMulNBits,
		sensitive: SensitiveFloat, algorithm: GPTQ, damp: 0.05, calib: all.Calibration, ioFloat16: true, exclNodes: map[string]bool{"n": true}, exclOps: map[string]bool{"Gemm": true},
	}
	if d := cmp.Diff(want, got, cmp.AllowUnexported(options{})); d != "" {
		t.Errorf("every option set (-want +got):\n%s", d)
	}
}

func TestNoQuantizableWeights(t *testing.T) {
	b := newBuilder(1)
	x := b.Input("x", "N", 4)
	y := b.Node("Relu", "y", []string{x})
	plain := b.Model(13, y)
	for _, spec := range allMethods {
		calib := NewBatches(randomBatches(1, "x", 1, 2, 4)...)
		_, _, err := Quantize(context.Background(), plain, spec, calib)
		if !errors.Is(err, ErrNoWeights) {
			t.Errorf("%s on a model without weights: error %v, want ErrNoWeights", specName(spec), err)
		}
	}
	// Excluding every candidate leaves nothing to quantize either, and the
	// error says why.
	spec := Options{Method: Static, ExcludeOpTypes: []string{"Conv", "Gemm"}}
	_, _, err := Quantize(context.Background(), convNet(1), spec, NewBatches(randomBatches(1, "x", 1, 1, 3, 8, 8)...))
	if !errors.Is(err, ErrNoWeights) {
		t.Fatalf("all excluded: error %v, want ErrNoWeights", err)
	}
}

// TestModelCannotBeUpgraded: a model whose opset cannot be raised to what
// the quantized form needs is refused as unsupported (bad input, not a
// failure worth retrying), saying why, for every method that upgrades.
func TestModelCannotBeUpgraded(t *testing.T) {
	tests := []struct {
		name string
		m    func() *onnx.Model
		say  string
	}{
		{"opset 5", func() *onnx.Model {
			b := newBuilder(1)
			return b.Model(5, b.Node("MatMul", "y", []string{b.Input("x", "N", 4), b.weight("w", 4, 3)}))
		}, "opset 5 is older than 6"},
		{"tf_half_pixel_for_nn", func() *onnx.Model {
			b := newBuilder(1)
			h := b.Node("MatMul", "h", []string{b.Input("x", 1, 1, 2, 4), b.weight("w", 4, 4)})
			scales := b.Init("scales", onnx.NewTensor([]int64{4}, []float32{1, 1, 2, 2}))
			return b.Model(11, b.Node("Resize", "y", []string{h, "", scales}, onnx.AttrString("coordinate_transformation_mode", "tf_half_pixel_for_nn")))
		}, "tf_half_pixel_for_nn was removed at opset 13"},
	}
	for _, tt := range tests {
		for _, spec := range []Options{{Method: Dynamic}, {Method: WeightOnly, Bits: 4}} {
			_, _, err := Quantize(context.Background(), tt.m(), spec, nil)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("%s, %s: error %v, want ErrUnsupported saying %q", tt.name, specName(spec), err, tt.say)
			}
		}
	}
}

func TestExclusions(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	for _, spec := range allMethods {
		t.Run(specName(spec), func(t *testing.T) {
			spec.ExcludeNodes, spec.ExcludeOpTypes = []string{"c2"}, []string{"Gemm"}
			m := convNet(1)
			q, r, err := Quantize(context.Background(), m, spec, NewBatches(randomBatches(1, "x", 2, 2, 3, 8, 8)...))
			if spec.Format == MatMulNBits {
				// Only Gemm could be MatMulNBits here, and it is excluded.
				if !errors.Is(err, ErrNoWeights) {
					t.Fatalf("error %v, want ErrNoWeights", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			reasons := floatReasons(r)
			want := map[string]Reason{"w2": ReasonExcludedNode, "w3": ReasonExcludedOpType}
			for name, reason := range want {
				if reasons[name] != reason {
					t.Errorf("%s left in float for %q, want %q (report %+v)", name, reasons[name], reason, r.Float)
				}
				if w := initializer(t, q, name); w.DType != onnx.Float {
					t.Errorf("excluded weight %s is %v, want FLOAT", name, w.DType)
				}
			}
			quantized := map[string]bool{}
			for _, w := range r.Quantized {
				quantized[w.Name] = true
			}
			delete(quantized, "b1") // the bias goes with w1 where the method writes biases
			if !cmp.Equal(quantized, map[string]bool{"w1": true}) {
				t.Errorf("quantized %v, want w1 (and its bias)", quantized)
			}
			in := randomBatches(3, "x", 1, 2, 3, 8, 8)[0]
			if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.99 {
				t.Errorf("cosine to the float model %.4f", c)
			}
		})
	}
}

func TestSharedWeightStaysFloat(t *testing.T) {
	b := newBuilder(2)
	x := b.Input("x", 4, 4)
	w := b.weight("w", 4, 4)
	h := b.Node("MatMul", "h", []string{x, w})
	y := b.Node("Add", "y", []string{h, w}) // w read as data too
	v := b.Node("MatMul", "v", []string{x, b.weight("w2", 4, 3)})
	m := b.Model(13, y, v)
	q, r, err := Quantize(context.Background(), m, Options{Method: Dynamic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := floatReasons(r)["w"]; got != ReasonSharedWeight {
		t.Errorf("w reason %q, want %q", got, ReasonSharedWeight)
	}
	if len(r.Quantized) != 1 || r.Quantized[0].Name != "w2" {
		t.Errorf("quantized %+v, want only w2", r.Quantized)
	}
	in := randomBatches(1, "x", 1, 4, 4)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.9999 {
		t.Errorf("y (float path) cosine %.5f, want unchanged", c)
	}
}

// constSubgraphNet keeps weights where real models do: a Constant node in
// the main graph, an initializer inside an If branch, and a main-graph
// weight read from inside the other branch.
func constSubgraphNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 16)
	b.Inputs = append(b.Inputs, onnx.ValueInfo("cond", onnx.Bool, []onnx.Dim{}))
	wc, err := onnx.TensorToProto(onnx.NewTensor([]int64{16, 16}, b.randn(256)), "")
	if err != nil {
		panic(err)
	}
	wc.Name = nil
	b.Nodes = append(b.Nodes, onnx.NewNode("Constant", "wc_const", nil, []string{"wc"}, onnx.AttrTensor("value", wc)))
	h := b.Node("MatMul", "h", []string{x, "wc"})
	wo := b.weight("wo", 16, 4)
	wt, err := onnx.TensorToProto(onnx.NewTensor([]int64{16, 4}, b.randn(64)), "wt")
	if err != nil {
		panic(err)
	}
	then := &onnxpb.GraphProto{
		Name:        proto.String("then"),
		Initializer: []*onnxpb.TensorProto{wt},
		Node:        []*onnxpb.NodeProto{onnx.NewNode("MatMul", "then_mm", []string{h, "wt"}, []string{"t_out"})},
		Output:      []*onnxpb.ValueInfoProto{onnx.ValueInfo("t_out", onnx.Float, nil)},
	}
	els := &onnxpb.GraphProto{
		Name:   proto.String("else"),
		Node:   []*onnxpb.NodeProto{onnx.NewNode("MatMul", "else_mm", []string{h, wo}, []string{"e_out"})},
		Output: []*onnxpb.ValueInfoProto{onnx.ValueInfo("e_out", onnx.Float, nil)},
	}
	b.Nodes = append(b.Nodes, onnx.NewNode("If", "if", []string{"cond"}, []string{"y"}, onnx.AttrGraph("then_branch", then), onnx.AttrGraph("else_branch", els)))
	return b.Model(13, "y")
}

func TestConstantNodeAndSubgraphWeights(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	for _, spec := range allMethods {
		t.Run(specName(spec), func(t *testing.T) {
			m := constSubgraphNet(1)
			batches := randomBatches(2, "x", 2, 3, 16)
			for _, bt := range batches {
				bt["cond"] = onnx.NewTensor([]int64{}, []bool{true})
			}
			q, r, err := Quantize(context.Background(), m, spec, NewBatches(batches...))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, w := range r.Quantized {
				got[w.Name] = true
			}
			want := map[string]bool{"wc": true, "wt": true, "wo": true}
			if spec.Method == FP16 {
				// Subgraphs compute in float32 and read their weights,
				// stored as float16, through a Cast.
				if reasons := floatReasons(r); len(reasons) != 0 {
					t.Errorf("left in float: %v, want nothing", reasons)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("quantized weights (-want +got):\n%s", diff)
			}
			// Dynamic MatMulInteger runs u8s8 integer kernels, which
			// saturate on AVX2 without VNNI: these flat random weights
			// lose 0.06 of cosine there (0.94), none with VNNI. A wrong
			// or misplaced weight gives far less.
			floor := 0.97
			if spec.Method == Dynamic {
				floor = 0.9
			}
			for _, cond := range []bool{true, false} {
				in := randomBatches(3, "x", 1, 2, 16)[0]
				in["cond"] = onnx.NewTensor([]int64{}, []bool{cond})
				if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < floor {
					t.Errorf("cond %v: cosine to the float model %.4f, want >= %.2f", cond, c, floor)
				}
			}
		})
	}
}

// Weights the model computes from constants alone (a weight transposed and
// scaled, a ConstantOfShape bias) are computed once and quantized; one
// drawn at run time is named with the reason.
func TestComputedWeights(t *testing.T) {
	orttest.Require(t)
	b := newBuilder(7)
	x := b.Input("x", 2, 8)
	ws := b.Node("Mul", "ws", []string{b.Node("Transpose", "wt", []string{b.weight("w", 6, 8)}), b.Init("two", onnx.NewTensor([]int64{}, []float32{2}))})
	h := b.Node("MatMul", "h", []string{x, ws})
	half, err := onnx.TensorToProto(onnx.NewTensor([]int64{1}, []float32{0.5}), "")
	if err != nil {
		t.Fatal(err)
	}
	half.Name = nil
	bias := b.Node("ConstantOfShape", "bias", []string{b.Init("n", onnx.NewTensor([]int64{1}, []int64{4}))}, onnx.AttrTensor("value", half))
	g := b.Node("Gemm", "g", []string{h, b.weight("wg", 6, 4), bias})
	noise := b.Node("RandomUniformLike", "noise", []string{b.weight("wn", 4, 3)})
	y := b.Node("MatMul", "y", []string{g, noise})
	m := b.Model(13, y)
	q, r, err := Quantize(context.Background(), m, Options{Method: Dynamic}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var folded, quantized []string
	for _, f := range r.Folded {
		folded = append(folded, f.Name)
	}
	for _, w := range r.Quantized {
		quantized = append(quantized, w.Name)
	}
	if diff := cmp.Diff([]string{"ws", "bias"}, folded); diff != "" {
		t.Errorf("folded (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"ws", "wg"}, quantized); diff != "" {
		t.Errorf("quantized (-want +got):\n%s", diff)
	}
	reasons := floatReasons(r)
	if reasons["noise"] != ReasonComputed || reasons["bias"] != ReasonBias {
		t.Errorf("noise: %q, bias: %q; want %q and %q", reasons["noise"], reasons["bias"], ReasonComputed, ReasonBias)
	}
	if len(nodesOf(q, "ConstantOfShape"))+len(nodesOf(q, "Transpose")) != 0 {
		t.Errorf("folded chains still in the model: %v", opTypes(q))
	}
	// y is random: compare g, the quantized layers' output.
	in := randomBatches(8, "x", 1, 2, 8)[0]
	mg, err := m.ExposeOutputs([]string{g})
	if err != nil {
		t.Fatal(err)
	}
	qg, err := q.ExposeOutputs([]string{g})
	if err != nil {
		t.Fatal(err)
	}
	if c := cosine(t, run(t, qg, in)[g], run(t, mg, in)[g]); c < 0.99 {
		t.Errorf("cosine of g to the float model %.4f, want >= 0.99", c)
	}
}
