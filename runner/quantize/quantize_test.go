package quantize

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

var allMethods = []v1alpha1.QuantizeSpec{
	{Method: v1alpha1.QuantizeStatic},
	{Method: v1alpha1.QuantizeDynamic},
	{Method: v1alpha1.QuantizeWeightOnly, Bits: 4},
	{Method: v1alpha1.QuantizeWeightOnly, Bits: 8, Format: v1alpha1.FormatMatMulNBits},
	{Method: v1alpha1.QuantizeFP16},
}

func specName(s v1alpha1.QuantizeSpec) string {
	name := string(s.Method)
	if s.Bits != 0 {
		name += "-" + string(rune('0'+s.Bits))
	}
	if s.Format != "" {
		name += "-" + string(s.Format)
	}
	return name
}

func TestSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.QuantizeSpec
	}{
		{"unknown method", v1alpha1.QuantizeSpec{Method: "magic"}},
		{"4 bits static", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Bits: 4}},
		{"6 bits", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 6}},
		{"block size 48", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, BlockSize: 48}},
		{"block size 512", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, BlockSize: 512}},
		{"matmulnbits dynamic", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic, Format: v1alpha1.FormatMatMulNBits}},
		{"int16 activations", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, ActivationType: "int16"}},
		{"bad percentile", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationPercentile, Percentile: "high"}}},
		{"bad calibration", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Method: "kl"}}},
		{"bad io type", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeFP16, IOType: "bfloat16"}},
	}
	for _, tt := range tests {
		_, _, err := Quantize(context.Background(), convNet(1), tt.spec, nil)
		if !errors.Is(err, ErrSpec) {
			t.Errorf("%s: error %v, want ErrSpec", tt.name, err)
		}
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
	spec := v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Exclude: &v1alpha1.Exclusion{OpTypes: []string{"Conv", "Gemm"}}}
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
		for _, spec := range []v1alpha1.QuantizeSpec{{Method: v1alpha1.QuantizeDynamic}, {Method: v1alpha1.QuantizeWeightOnly, Bits: 4}} {
			_, _, err := Quantize(context.Background(), tt.m(), spec, nil)
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.say) {
				t.Errorf("%s, %s: error %v, want ErrUnsupported saying %q", tt.name, specName(spec), err, tt.say)
			}
		}
	}
}

func TestExclusions(t *testing.T) {
	orttest.Require(t) // static quantization calibrates with ONNX Runtime
	excl := &v1alpha1.Exclusion{Nodes: []string{"c2"}, OpTypes: []string{"Gemm"}}
	for _, spec := range allMethods {
		t.Run(specName(spec), func(t *testing.T) {
			spec.Exclude = excl
			m := convNet(1)
			q, r, err := Quantize(context.Background(), m, spec, NewBatches(randomBatches(1, "x", 2, 2, 3, 8, 8)...))
			if spec.Format == v1alpha1.FormatMatMulNBits {
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
	q, r, err := Quantize(context.Background(), m, v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}, nil)
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
			if spec.Method == v1alpha1.QuantizeFP16 {
				// float16 covers the main graph; subgraph weights stay.
				want = map[string]bool{"wc": true}
				if reasons := floatReasons(r); reasons["wt"] != ReasonSubgraph {
					t.Errorf("wt reason %q, want %q", reasons["wt"], ReasonSubgraph)
				}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("quantized weights (-want +got):\n%s", diff)
			}
			for _, cond := range []bool{true, false} {
				in := randomBatches(3, "x", 1, 2, 16)[0]
				in["cond"] = onnx.NewTensor([]int64{}, []bool{cond})
				if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.97 {
					t.Errorf("cond %v: cosine to the float model %.4f, want >= 0.97", cond, c)
				}
			}
		})
	}
}
