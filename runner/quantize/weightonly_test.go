package quantize

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

func TestWeightOnlyQDQ(t *testing.T) {
	tests := []struct {
		bits       int
		asymmetric bool
		dtype      onnx.DataType
		zeroPoint  bool
	}{
		{4, false, onnx.Int4, false},
		{4, true, onnx.Uint4, true},
		{8, false, onnx.Int8, true},
		{8, true, onnx.Uint8, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d bits %v", tt.bits, tt.dtype), func(t *testing.T) {
			m := mixedNet(1)
			q, r, err := Quantize(context.Background(), m, Options{
				Method: WeightOnly, Bits: tt.bits, Symmetric: ptr(!tt.asymmetric), BlockSize: 16, SensitiveLayers: everyWeightAt(tt.bits),
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if q.Opset("") != 21 {
				t.Errorf("opset %d, want 21 (int4 and block_size)", q.Opset(""))
			}
			want := []string{
				"DequantizeLinear", "Reshape", "Conv", "Relu", "Flatten",
				"DequantizeLinear", "MatMul",
				"DequantizeLinear", "Gemm",
			}
			if diff := cmp.Diff(want, opTypes(q)); diff != "" {
				t.Errorf("node sequence (-want +got):\n%s", diff)
			}
			// Blocks run along the input dimension of each weight: the
			// Conv kernel as [M, C*kh*kw] axis 1, MatMul [K, N] axis 0,
			// transB Gemm [N, K] axis 1.
			wantDims := map[string][]int64{"wc": {4, 27}, "wm": {64, 20}, "wg": {5, 20}}
			wantAxis := map[string]int64{"wc": 1, "wm": 0, "wg": 1}
			wantScale := map[string][]int64{"wc": {4, 2}, "wm": {4, 20}, "wg": {5, 2}}
			for _, n := range nodesOf(q, "DequantizeLinear") {
				w := n.GetInput()[0][:2]
				data := initializer(t, q, n.GetInput()[0])
				if data.DType != tt.dtype || !cmp.Equal(data.Dims, wantDims[w]) {
					t.Errorf("%s data %v %v, want %v %v", w, data.DType, data.Dims, tt.dtype, wantDims[w])
				}
				if onnx.IntAttr(n, "axis", -1) != wantAxis[w] || onnx.IntAttr(n, "block_size", 0) != 16 {
					t.Errorf("%s DequantizeLinear axis %d block %d, want %d 16", w, onnx.IntAttr(n, "axis", -1), onnx.IntAttr(n, "block_size", 0), wantAxis[w])
				}
				if s := initializer(t, q, n.GetInput()[1]); !cmp.Equal(s.Dims, wantScale[w]) {
					t.Errorf("%s scale dims %v, want %v", w, s.Dims, wantScale[w])
				}
				if got := len(n.GetInput()) == 3; got != tt.zeroPoint {
					t.Errorf("%s has a zero point: %v, want %v", w, got, tt.zeroPoint)
				}
			}
			if len(r.Quantized) != 3 {
				t.Errorf("%d weights quantized, want 3", len(r.Quantized))
			}
			// ONNX Runtime fuses the blocked MatMul into MatMulNBits.
			if k := optimizedOps(t, q); k["MatMulNBits"] != 1 {
				t.Errorf("optimized graph %v, want a MatMulNBits", k)
			}
			in := randomBatches(3, "x", 1, 2, 3, 6, 6)[0]
			min := 0.99
			if tt.bits == 4 {
				min = 0.95
			}
			if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < min {
				t.Errorf("cosine to the float model %.4f, want >= %v", c, min)
			}
		})
	}
}

func TestWeightOnlyMatMulNBits(t *testing.T) {
	for _, bits := range []int{4, 8} {
		for _, asym := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d bits symmetric %v", bits, !asym), func(t *testing.T) {
				m := mixedNet(4)
				q, r, err := Quantize(context.Background(), m, Options{
					Method: WeightOnly, Bits: bits, Symmetric: ptr(!asym), BlockSize: 16, Format: MatMulNBits, SensitiveLayers: everyWeightAt(bits),
				}, nil)
				if err != nil {
					t.Fatal(err)
				}
				want := []string{"Conv", "Relu", "Flatten", "MatMulNBits", "MatMulNBits"}
				if diff := cmp.Diff(want, opTypes(q)); diff != "" {
					t.Errorf("node sequence (-want +got):\n%s", diff)
				}
				nb := nodesOf(q, "MatMulNBits")
				if len(nb) != 2 {
					t.Fatalf("%d MatMulNBits, want 2", len(nb))
				}
				for i, kn := range [][2]int64{{64, 20}, {20, 5}} {
					n := nb[i]
					if n.GetDomain() != msDomain || onnx.IntAttr(n, "K", 0) != kn[0] || onnx.IntAttr(n, "N", 0) != kn[1] ||
						onnx.IntAttr(n, "bits", 0) != int64(bits) || onnx.IntAttr(n, "block_size", 0) != 16 {
						t.Errorf("MatMulNBits %d: domain %q K %d N %d bits %d block %d", i, n.GetDomain(),
							onnx.IntAttr(n, "K", 0), onnx.IntAttr(n, "N", 0), onnx.IntAttr(n, "bits", 0), onnx.IntAttr(n, "block_size", 0))
					}
					blocks := (kn[0] + 15) / 16
					if b := initializer(t, q, n.GetInput()[1]); !cmp.Equal(b.Dims, []int64{kn[1], blocks, int64(16 * bits / 8)}) {
						t.Errorf("MatMulNBits %d B dims %v", i, b.Dims)
					}
				}
				// The Gemm's bias is MatMulNBits' input 5.
				if in := nb[1].GetInput(); len(in) != 6 || in[5] != "bg" {
					t.Errorf("Gemm's MatMulNBits inputs %q, want bias bg at index 5", in)
				}
				if got := floatReasons(r)["wc"]; got != ReasonUnsupportedOp {
					t.Errorf("Conv weight reason %q, want %q", got, ReasonUnsupportedOp)
				}
				if q.Opset(msDomain) != 1 {
					t.Errorf("com.microsoft opset %d, want 1", q.Opset(msDomain))
				}
				in := randomBatches(3, "x", 1, 2, 3, 6, 6)[0]
				if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.95 {
					t.Errorf("cosine to the float model %.4f, want >= 0.95", c)
				}
			})
		}
	}
}

// everyWeightAt turns the 4-bit guard off for tests of the stored form.
func everyWeightAt(bits int) SensitiveLayers {
	if bits == 4 {
		return SensitiveInt4
	}
	return ""
}

// A MatMul weight holding a NaN is left in float with its reason (found
// while quantizing, not by a pass of its own); the others are quantized.
func TestWeightOnlyMatMulNBitsNotFinite(t *testing.T) {
	m := mixedNet(4)
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		if tp.GetName() == "wm" {
			v, err := onnx.TensorFromProto(tp)
			if err != nil {
				t.Fatal(err)
			}
			v.Data.([]float32)[100] = float32(math.NaN())
			if err := onnx.SetProtoData(tp, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	q, r, err := Quantize(context.Background(), m, Options{Method: WeightOnly, Bits: 4, BlockSize: 16, Format: MatMulNBits, SensitiveLayers: everyWeightAt(4)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := floatReasons(r)["wm"]; got != ReasonNotFinite {
		t.Errorf("wm reason %q, want %q", got, ReasonNotFinite)
	}
	if n := len(nodesOf(q, "MatMulNBits")); n != 1 {
		t.Errorf("%d MatMulNBits, want 1 (the Gemm's)", n)
	}
}
