package eval_test

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// counts are the figures a hand-built model must give.
type counts struct {
	MACs          int64
	MACsByOp      map[string]int64
	Params        int64
	NonzeroParams int64
}

// TestHandBuiltModels checks MACs, params and non-zero params against
// values worked out by hand; every model also has to load and run in ONNX
// Runtime, which proves the hand-built graphs are what they claim.
func TestHandBuiltModels(t *testing.T) {
	orttest.Require(t)
	tests := []struct {
		name   string
		build  func(t *testing.T) []byte
		inputs map[string]feed.Spec
		want   counts
	}{{
		// Y is [1,6,4,4]: dilated kernel 5, (9 + 1 + 1 - 5) / 2 + 1 = 4.
		// MACs = 96 outputs x (4/2 channels x 3x3) = 1728. W has 108
		// values, every third (36) zero; B 6 non-zero.
		name: "Conv groups strides pads dilations",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, "N", 4, 9, 9).
				init("w", onnx.NewTensor([]int64{6, 2, 3, 3}, floats(108, 0.01, 0.5, 3))).
				init("b", onnx.NewTensor([]int64{6}, floats(6, 1, 1, 0))).
				node("Conv", []string{"x", "w", "b"}, []string{"y"},
					onnx.AttrInt("group", 2), onnx.AttrInts("strides", 2, 2),
					onnx.AttrInts("pads", 1, 1, 1, 1), onnx.AttrInts("dilations", 2, 2)).
				output("y", onnx.Float).bytes(13)
		},
		want: counts{MACs: 1728, MACsByOp: map[string]int64{"Conv": 1728}, Params: 114, NonzeroParams: 78},
	}, {
		// Y is [1,4,8,10] for the 10x12 input given in Shapes: 320
		// outputs x 3x3x3.
		name: "Conv on dynamic spatial dims from Shapes",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, "N", 3, "H", "W").
				init("w", onnx.NewTensor([]int64{4, 3, 3, 3}, floats(108, 0.01, 0.5, 0))).
				node("Conv", []string{"x", "w"}, []string{"y"}).
				output("y", onnx.Float).bytes(13)
		},
		inputs: map[string]feed.Spec{"x": {Shape: []int64{3, 10, 12}}},
		want:   counts{MACs: 8640, MACsByOp: map[string]int64{"Conv": 8640}, Params: 108, NonzeroParams: 108},
	}, {
		// Each of the 18 input values meets 3 output channels x 2x2.
		name: "ConvTranspose stride 2",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, "N", 2, 3, 3).
				init("w", onnx.NewTensor([]int64{2, 3, 2, 2}, floats(24, 0.1, 0.5, 0))).
				node("ConvTranspose", []string{"x", "w"}, []string{"y"}, onnx.AttrInts("strides", 2, 2)).
				output("y", onnx.Float).bytes(13)
		},
		want: counts{MACs: 216, MACsByOp: map[string]int64{"ConvTranspose": 216}, Params: 24, NonzeroParams: 24},
	}, {
		// [1,5] x [4,5]^T + C: 4 outputs x K=5.
		name: "Gemm transB",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, "N", 5).
				init("w", onnx.NewTensor([]int64{4, 5}, floats(20, 0.1, 0.5, 0))).
				init("c", onnx.NewTensor([]int64{4}, floats(4, 1, 1, 0))).
				node("Gemm", []string{"x", "w", "c"}, []string{"y"}, onnx.AttrInt("transB", 1)).
				output("y", onnx.Float).bytes(13)
		},
		want: counts{MACs: 20, MACsByOp: map[string]int64{"Gemm": 20}, Params: 24, NonzeroParams: 24},
	}, {
		// A is the [5,1] transpose of x: K = A's first dim, 5 (reading
		// the second would give 4 x 1).
		name: "Gemm transA",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, 1, 5).
				init("w", onnx.NewTensor([]int64{5, 4}, floats(20, 0.1, 0.5, 0))).
				node("Transpose", []string{"x"}, []string{"xt"}).
				node("Gemm", []string{"xt", "w"}, []string{"y"}, onnx.AttrInt("transA", 1)).
				output("y", onnx.Float).bytes(13)
		},
		want: counts{MACs: 20, MACsByOp: map[string]int64{"Gemm": 20}, Params: 20, NonzeroParams: 20},
	}, {
		// [3,4,5] x [5,6]: 72 outputs x 5 = 360; then x x x^T per matrix
		// ([3,4,5] x [3,5,4]): 48 outputs x 5 = 240.
		name: "batched MatMul",
		build: func(t *testing.T) []byte {
			return newGraph(t).input("x", onnx.Float, "N", 3, 4, 5).
				init("w", onnx.NewTensor([]int64{5, 6}, floats(30, 0.1, 0.5, 0))).
				node("MatMul", []string{"x", "w"}, []string{"y"}).
				node("Transpose", []string{"x"}, []string{"xt"}, onnx.AttrInts("perm", 0, 1, 3, 2)).
				node("MatMul", []string{"x", "xt"}, []string{"z"}).
				output("y", onnx.Float).output("z", onnx.Float).bytes(13)
		},
		want: counts{MACs: 600, MACsByOp: map[string]int64{"MatMul": 600}, Params: 30, NonzeroParams: 30},
	}, {
		// Codes per column around a per-axis zero point: half of them (15)
		// equal it. The int32 bias has one zero code. Scales are not
		// parameters.
		name:  "DequantizeLinear per axis into MatMul, int32 bias",
		build: dqMatMul,
		want:  counts{MACs: 30, MACsByOp: map[string]int64{"MatMul": 30}, Params: 36, NonzeroParams: 20},
	}, {
		// Blocks of 4 along K: one code per block and column equals the
		// block's zero point (6 of 24).
		name:  "DequantizeLinear blocked (opset 21) into MatMul",
		build: dqBlocked,
		want:  counts{MACs: 24, MACsByOp: map[string]int64{"MatMul": 24}, Params: 24, NonzeroParams: 18},
	}, {
		// 10 of 30 codes equal the zero point 128; the weight scale the
		// Mul applies is a quantization parameter.
		name:  "dynamic MatMulInteger",
		build: dynamicMatMul,
		want:  counts{MACs: 30, MACsByOp: map[string]int64{"MatMulInteger": 30}, Params: 30, NonzeroParams: 20},
	}, {
		// [1,4,3,3] outputs x 3x3x3 = 972; every fourth code (27) is the
		// zero point 3.
		name:  "dynamic ConvInteger",
		build: dynamicConv,
		want:  counts{MACs: 972, MACsByOp: map[string]int64{"ConvInteger": 972}, Params: 108, NonzeroParams: 81},
	}, {
		// 972 MACs as above; 108 weight codes (every fifth, 22, zero) and
		// a 4-value int32 bias with one zero.
		name:  "QLinearConv",
		build: qlinearConv,
		want:  counts{MACs: 972, MACsByOp: map[string]int64{"QLinearConv": 972}, Params: 112, NonzeroParams: 89},
	}, {
		name:  "QLinearMatMul",
		build: qlinearMatMul,
		want:  counts{MACs: 30, MACsByOp: map[string]int64{"QLinearMatMul": 30}, Params: 30, NonzeroParams: 24},
	}, {
		// K=20 in blocks of 16: 4 columns x 20 codes; a quarter (5 per
		// column) sit at the default zero point 8. The padding codes past
		// K are not parameters.
		name:  "MatMulNBits int4 symmetric",
		build: func(t *testing.T) []byte { return matMulNBits(t, false) },
		want:  counts{MACs: 80, MACsByOp: map[string]int64{"MatMulNBits": 80}, Params: 80, NonzeroParams: 60},
	}, {
		name:  "MatMulNBits int4 with packed zero points",
		build: func(t *testing.T) []byte { return matMulNBits(t, true) },
		want:  counts{MACs: 80, MACsByOp: map[string]int64{"MatMulNBits": 80}, Params: 80, NonzeroParams: 60},
	}, {
		// 12 (sparse initializer, 2 non-zero) + 3 (Constant, 1 zero) + 3
		// (a Constant inside an If branch) float values; the Reshape
		// shape and the If condition are not parameters.
		name:  "weights in Constant nodes, sparse initializers and subgraphs",
		build: weightsEverywhere,
		want:  counts{MACs: 12, MACsByOp: map[string]int64{"MatMul": 12}, Params: 18, NonzeroParams: 7},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := eval.Evaluate(context.Background(), eval.Request{
				Model: tc.build(t), Name: tc.name, Inputs: tc.inputs, Threads: 1,
				Spec: eval.Settings{Samples: 2, LatencyRuns: 1},
			})
			if err != nil {
				t.Fatal(err)
			}
			got := counts{MACs: rep.MACs, MACsByOp: rep.MACsByOp, Params: rep.Params, NonzeroParams: rep.NonzeroParams}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

// dqMatMul: int8 [5,6] codes with a zero point per column (axis 1),
// dequantized into a MatMul, plus an int32 bias dequantized into an Add.
func dqMatMul(t *testing.T) []byte {
	zp := []int8{-3, -2, -1, 0, 1, 2}
	codes := make([]int8, 30)
	for k := range 5 {
		for c := range 6 {
			codes[k*6+c] = zp[c]
			if (k+c)%2 == 1 {
				codes[k*6+c] = zp[c] + int8(k) + 1
			}
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 5).
		init("wq", onnx.NewTensor([]int64{5, 6}, codes)).
		init("ws", onnx.NewTensor([]int64{6}, floats(6, 0.01, 0.02, 0))).
		init("wzp", onnx.NewTensor([]int64{6}, zp)).
		init("bq", onnx.NewTensor([]int64{6}, []int32{0, 5, -7, 100, 3, 9})).
		init("bs", onnx.NewTensor([]int64{6}, floats(6, 0.001, 0.002, 0))).
		node("DequantizeLinear", []string{"wq", "ws", "wzp"}, []string{"w"}, onnx.AttrInt("axis", 1)).
		node("DequantizeLinear", []string{"bq", "bs"}, []string{"b"}, onnx.AttrInt("axis", 0)).
		node("MatMul", []string{"x", "w"}, []string{"xw"}).
		node("Add", []string{"xw", "b"}, []string{"y"}).
		output("y", onnx.Float).bytes(13)
}

// dqBlocked: int8 [8,3] in blocks of 4 along axis 0, zero points [2,3].
func dqBlocked(t *testing.T) []byte {
	zp := []int8{-2, -1, 0, 1, 2, 3}
	codes := make([]int8, 24)
	for k := range 8 {
		for c := range 3 {
			z := zp[(k/4)*3+c]
			codes[k*3+c] = z + 1
			if k%4 == c {
				codes[k*3+c] = z
			}
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 8).
		init("wq", onnx.NewTensor([]int64{8, 3}, codes)).
		init("ws", onnx.NewTensor([]int64{2, 3}, floats(6, 0.01, 0.02, 0))).
		init("wzp", onnx.NewTensor([]int64{2, 3}, zp)).
		node("DequantizeLinear", []string{"wq", "ws", "wzp"}, []string{"w"}, onnx.AttrInt("axis", 0), onnx.AttrInt("block_size", 4)).
		node("MatMul", []string{"x", "w"}, []string{"y"}).
		output("y", onnx.Float).bytes(21)
}

// dynamicMatMul is the graph a dynamic quantizer writes for MatMul:
// DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(x scale * w scale).
func dynamicMatMul(t *testing.T) []byte {
	codes := make([]uint8, 30)
	for i := range codes {
		codes[i] = uint8(50 + i)
		if i%3 == 0 {
			codes[i] = 128
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 5).
		init("wq", onnx.NewTensor([]int64{5, 6}, codes)).
		init("wzp", onnx.NewTensor([]int64{}, []uint8{128})).
		init("ws", scalarF(0.01)).
		node("DynamicQuantizeLinear", []string{"x"}, []string{"xq", "xs", "xzp"}).
		node("MatMulInteger", []string{"xq", "wq", "xzp", "wzp"}, []string{"acc"}).
		node("Cast", []string{"acc"}, []string{"accf"}, onnx.AttrInt("to", int64(onnx.Float))).
		node("Mul", []string{"xs", "ws"}, []string{"scale"}).
		node("Mul", []string{"accf", "scale"}, []string{"y"}).
		output("y", onnx.Float).bytes(13)
}

func dynamicConv(t *testing.T) []byte {
	codes := make([]uint8, 108)
	for i := range codes {
		codes[i] = uint8(10 + i)
		if i%4 == 0 {
			codes[i] = 3
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 3, 5, 5).
		init("wq", onnx.NewTensor([]int64{4, 3, 3, 3}, codes)).
		init("wzp", onnx.NewTensor([]int64{}, []uint8{3})).
		node("DynamicQuantizeLinear", []string{"x"}, []string{"xq", "xs", "xzp"}).
		node("ConvInteger", []string{"xq", "wq", "xzp", "wzp"}, []string{"acc"}).
		node("Cast", []string{"acc"}, []string{"y"}, onnx.AttrInt("to", int64(onnx.Float))).
		output("y", onnx.Float).bytes(13)
}

func qlinearConv(t *testing.T) []byte {
	codes := make([]int8, 108)
	for i := range codes {
		codes[i] = int8(i%50 - 20)
		if i%5 == 0 {
			codes[i] = 0
		} else if codes[i] == 0 {
			codes[i] = 7
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 3, 5, 5).
		init("xs", scalarF(0.02)).init("xzp", onnx.NewTensor([]int64{}, []uint8{128})).
		init("wq", onnx.NewTensor([]int64{4, 3, 3, 3}, codes)).
		init("ws", onnx.NewTensor([]int64{4}, floats(4, 0.01, 0.01, 0))).
		init("wzp", onnx.NewTensor([]int64{4}, []int8{0, 0, 0, 0})).
		init("ys", scalarF(0.05)).init("yzp", onnx.NewTensor([]int64{}, []uint8{128})).
		init("bq", onnx.NewTensor([]int64{4}, []int32{0, 10, -10, 20})).
		node("QuantizeLinear", []string{"x", "xs", "xzp"}, []string{"xq"}).
		node("QLinearConv", []string{"xq", "xs", "xzp", "wq", "ws", "wzp", "ys", "yzp", "bq"}, []string{"yq"}).
		node("DequantizeLinear", []string{"yq", "ys", "yzp"}, []string{"y"}).
		output("y", onnx.Float).bytes(13)
}

// qlinearMatMul: 6 of the 30 int8 codes equal the zero point -4.
func qlinearMatMul(t *testing.T) []byte {
	codes := make([]int8, 30)
	for i := range codes {
		codes[i] = int8(i - 10)
		if i%5 == 0 {
			codes[i] = -4
		} else if codes[i] == -4 {
			codes[i] = 40
		}
	}
	return newGraph(t).input("x", onnx.Float, "N", 5).
		init("xs", scalarF(0.02)).init("xzp", onnx.NewTensor([]int64{}, []uint8{128})).
		init("wq", onnx.NewTensor([]int64{5, 6}, codes)).
		init("ws", scalarF(0.01)).init("wzp", onnx.NewTensor([]int64{}, []int8{-4})).
		init("ys", scalarF(0.05)).init("yzp", onnx.NewTensor([]int64{}, []uint8{128})).
		node("QuantizeLinear", []string{"x", "xs", "xzp"}, []string{"xq"}).
		node("QLinearMatMul", []string{"xq", "xs", "xzp", "wq", "ws", "wzp", "ys", "yzp"}, []string{"yq"}).
		node("DequantizeLinear", []string{"yq", "ys", "yzp"}, []string{"y"}).
		output("y", onnx.Float).bytes(13)
}

// matMulNBits: K=20, N=4, 4 bits, blocks of 16 (2 blocks, the second
// holding 4 codes and 12 of padding). A code equals its zero point when
// (k + n) % 4 == 0; the padding never does.
func matMulNBits(t *testing.T, zeroPoints bool) []byte {
	const K, N, block, blocks, blob = 20, 4, 16, 2, 8
	zp := func(b int) uint8 { return 8 }
	if zeroPoints {
		zp = func(b int) uint8 { return []uint8{5, 9}[b] }
	}
	packed := make([]uint8, N*blocks*blob)
	for n := range N {
		for b := range blocks {
			for j := range block {
				k := b*block + j
				code := zp(b) ^ 1
				if k < K && (k+n)%4 == 0 {
					code = zp(b)
				}
				packed[(n*blocks+b)*blob+j/2] |= code << (4 * (j % 2))
			}
		}
	}
	g := newGraph(t).input("x", onnx.Float, "N", K).
		init("b", onnx.NewTensor([]int64{N, blocks, blob}, packed)).
		init("scales", onnx.NewTensor([]int64{N * blocks}, floats(N*blocks, 0.01, 0.01, 0)))
	ins := []string{"x", "b", "scales"}
	if zeroPoints {
		g.init("zp", onnx.NewTensor([]int64{N}, []uint8{5 | 9<<4, 5 | 9<<4, 5 | 9<<4, 5 | 9<<4}))
		ins = append(ins, "zp")
	}
	return g.msNode("MatMulNBits", ins, []string{"y"},
		onnx.AttrInt("K", K), onnx.AttrInt("N", N), onnx.AttrInt("bits", 4), onnx.AttrInt("block_size", block)).
		output("y", onnx.Float).bytes(21)
}

// weightsEverywhere keeps weights in a sparse initializer, a Constant node
// and a Constant inside an If branch.
func weightsEverywhere(t *testing.T) []byte {
	then := newGraph(t).constant("tb", onnx.NewTensor([]int64{3}, []float32{1, 2, 3})).
		node("Add", []string{"r", "tb"}, []string{"then_y"}).output("then_y", onnx.Float).g
	els := newGraph(t).node("Identity", []string{"r"}, []string{"else_y"}).output("else_y", onnx.Float).g
	m := newGraph(t).input("x", onnx.Float, "N", 4).
		init("w", onnx.NewTensor([]int64{4, 3}, []float32{0, 0, 1.5, 0, 0, 0, 0, -2, 0, 0, 0, 0})).
		constant("bias", onnx.NewTensor([]int64{3}, []float32{0, 0.25, 0.5})).
		constant("shape", onnx.NewTensor([]int64{2}, []int64{-1, 3})).
		constant("cond", onnx.NewTensor([]int64{}, []bool{true})).
		node("MatMul", []string{"x", "w"}, []string{"xw"}).
		node("Add", []string{"xw", "bias"}, []string{"a"}).
		node("Reshape", []string{"a", "shape"}, []string{"r"}).
		node("If", []string{"cond"}, []string{"y"}, onnx.AttrGraph("then_branch", then), onnx.AttrGraph("else_branch", els)).
		output("y", onnx.Float).model(13)
	if _, err := m.Sparsify([]string{"w"}, onnx.LinearIndices); err != nil {
		t.Fatal(err)
	}
	if len(m.Proto.GetGraph().GetSparseInitializer()) != 1 {
		t.Fatalf("w was not stored sparse")
	}
	return modelBytes(t, m)
}
