package quantize

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// resizeNet is x -> Conv -> Resize (blocked for float16) -> Add(bias) -> y.
func resizeNet(seed uint64) *onnx.Model {
	b := newBuilder(seed)
	x := b.Input("x", "N", 3, 8, 8)
	c := b.Node("Conv", "c", []string{x, b.weight("w", 4, 3, 3, 3)})
	scales := b.Init("scales", onnx.NewTensor([]int64{4}, []float32{1, 1, 2, 2}))
	r := b.Node("Resize", "r", []string{c, "", scales})
	y := b.Node("Add", "y", []string{r, b.weight("bias", 4, 1, 1)})
	m := b.Model(13, y)
	return m
}

func TestFP16(t *testing.T) {
	tests := []struct {
		f16io   bool
		ioType  onnx.DataType
		ops     []string
		castsTo []onnx.DataType
	}{
		{
			f16io: false, ioType: onnx.Float,
			ops:     []string{"Cast", "Conv", "Cast", "Resize", "Cast", "Add", "Cast"},
			castsTo: []onnx.DataType{onnx.Float16, onnx.Float, onnx.Float16, onnx.Float},
		},
		{
			f16io: true, ioType: onnx.Float16,
			ops:     []string{"Conv", "Cast", "Resize", "Cast", "Add"},
			castsTo: []onnx.DataType{onnx.Float, onnx.Float16},
		},
	}
	for _, tt := range tests {
		t.Run(tt.ioType.String(), func(t *testing.T) {
			m := resizeNet(1)
			q, r, err := Quantize(context.Background(), m, Options{Method: FP16, Float16IO: tt.f16io}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.ops, opTypes(q)); diff != "" {
				t.Errorf("node sequence (-want +got):\n%s", diff)
			}
			var casts []onnx.DataType
			for _, n := range nodesOf(q, "Cast") {
				casts = append(casts, onnx.DataType(onnx.IntAttr(n, "to", 0)))
			}
			if diff := cmp.Diff(tt.castsTo, casts); diff != "" {
				t.Errorf("Cast targets (-want +got):\n%s", diff)
			}
			for _, name := range []string{"w", "bias"} {
				if w := initializer(t, q, name); w.DType != onnx.Float16 {
					t.Errorf("%s is %v, want FLOAT16", name, w.DType)
				}
			}
			// Resize's scales must stay float32.
			if s := initializer(t, q, "scales"); s.DType != onnx.Float {
				t.Errorf("scales is %v, want FLOAT", s.DType)
			}
			if got := floatReasons(r)["scales"]; got != ReasonFP16Blocked {
				t.Errorf("scales reason %q, want %q", got, ReasonFP16Blocked)
			}
			g := q.Proto.GetGraph()
			for _, vi := range append(g.GetInput(), g.GetOutput()...) {
				if dt := onnx.DataType(vi.GetType().GetTensorType().GetElemType()); dt != tt.ioType {
					t.Errorf("graph input/output %s is %v, want %v", vi.GetName(), dt, tt.ioType)
				}
			}
			in := randomBatches(2, "x", 1, 2, 3, 8, 8)[0]
			want := run(t, m, in)["y"]
			if tt.ioType == onnx.Float16 {
				x := in["x"].Data.([]float32)
				in = map[string]*onnx.Tensor{"x": onnx.NewTensor(in["x"].Dims, onnx.Float16s(x))}
			}
			if c := cosine(t, run(t, q, in)["y"], want); c < 0.999 {
				t.Errorf("cosine to the float32 model %.5f, want >= 0.999", c)
			}
		})
	}
}

func TestFP16KeepsZerosAndSaturates(t *testing.T) {
	got := toFloat16([]float32{0, 1e6, -1e6, 1.5, -0})
	want := []float32{0, 65504, -65504, 1.5, 0}
	if diff := cmp.Diff(want, onnx.Float32sFromFloat16(got)); diff != "" {
		t.Errorf("toFloat16 (-want +got):\n%s", diff)
	}
}

// A Constant node read by a float16 operator and by one that keeps
// float32 (Max is on the block list) stays float32 for the latter, with a
// float16 copy for the former; a Constant only a blocked operator reads
// stays float32 and is read as it is.
func TestFP16ConstantNodeSharedWithBlockedOp(t *testing.T) {
	b := newBuilder(3)
	x := b.Input("x", "N", 4)
	for _, c := range []struct {
		name string
		v    float32
	}{{"one", 1}, {"floor", -0.5}} {
		tp, err := onnx.TensorToProto(onnx.NewTensor([]int64{}, []float32{c.v}), "")
		if err != nil {
			t.Fatal(err)
		}
		tp.Name = nil
		b.Nodes = append(b.Nodes, onnx.NewNode("Constant", c.name+"_const", nil, []string{c.name}, onnx.AttrTensor("value", tp)))
	}
	w := b.weight("w", 4, 4)
	h := b.Node("MatMul", "h", []string{x, w})
	s := b.Node("Sub", "s", []string{h, "one"})
	y := b.Node("Max", "y", []string{s, "one", "floor"})
	m := b.Model(13, y)
	q, _, err := Quantize(context.Background(), m, Options{Method: FP16}, nil)
	if err != nil {
		t.Fatal(err)
	}
	maxNode := nodesOf(q, "Max")[0]
	if diff := cmp.Diff([]string{"s_fp32", "one", "floor"}, maxNode.GetInput()); diff != "" {
		t.Errorf("Max inputs (-want +got): %s", diff)
	}
	if n := len(nodesOf(q, "Cast")); n != 2 {
		t.Errorf("%d Casts (%v), want 2: x to float16, s to float32 for Max (none for the constants)", n, opTypes(q))
	}
	in := randomBatches(4, "x", 1, 3, 4)[0]
	if c := cosine(t, run(t, q, in)["y"], run(t, m, in)["y"]); c < 0.999 {
		t.Errorf("cosine to the float32 model %.5f, want >= 0.999", c)
	}
}

// Weights float16 cannot compute with in ONNX Runtime's CPU kernels (an
// LSTM's) or that subgraphs read (they compute in float32) are stored as
// float16 and cast back where read: the file halves, what the operators
// compute does not change beyond the rounding.
func TestFP16StoresEveryWeight(t *testing.T) {
	cases := []struct {
		name  string
		model func() *onnx.Model
		feed  map[string]*onnx.Tensor
		// casts: weights read through a Cast to float32.
		casts []string
	}{
		{"LSTM", func() *onnx.Model {
			b := newBuilder(4)
			x := b.Input("x", 3, 2, 8)
			h := b.Node("MatMul", "h", []string{x, b.weight("wi", 8, 8)})
			y := b.Node("LSTM", "y", []string{h, b.weight("W", 1, 16, 8), b.weight("R", 1, 16, 4), b.weight("B", 1, 32)}, onnx.AttrInt("hidden_size", 4))
			return b.Model(14, y)
		}, map[string]*onnx.Tensor{"x": randomBatches(1, "x", 1, 3, 2, 8)[0]["x"]}, []string{"B", "R", "W"}},
		{"If branches", func() *onnx.Model { return constSubgraphNet(2) }, map[string]*onnx.Tensor{
			"x": randomBatches(1, "x", 1, 2, 16)[0]["x"], "cond": onnx.NewTensor([]int64{}, []bool{false})}, []string{"wo", "wt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.model()
			q, r, err := Quantize(context.Background(), m, Options{Method: FP16}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if reasons := floatReasons(r); len(reasons) != 0 {
				t.Errorf("left in float32: %v", reasons)
			}
			var casts []string
			for _, ref := range q.Graphs() {
				for _, n := range ref.Graph.GetNode() {
					if n.GetOpType() == "Cast" && onnx.IntAttr(n, "to", 0) == int64(onnx.Float) {
						if w, ok := strings.CutSuffix(n.GetOutput()[0], "_fp32"); ok && w == n.GetInput()[0] {
							casts = append(casts, w)
						}
					}
				}
			}
			for _, w := range q.Weights() {
				if w.DType == onnx.Float {
					t.Errorf("weight %s is still float32", w.Name)
				}
			}
			sort.Strings(casts)
			if diff := cmp.Diff(tc.casts, intersect(casts, tc.casts)); diff != "" {
				t.Errorf("weights cast back to float32 (-want +got):\n%s", diff)
			}
			out := m.Proto.GetGraph().GetOutput()[0].GetName()
			if c := cosine(t, run(t, q, tc.feed)[out], run(t, m, tc.feed)[out]); c < 0.999 {
				t.Errorf("cosine to the float32 model %.5f, want >= 0.999", c)
			}
		})
	}
}

func intersect(got, want []string) []string {
	var out []string
	for _, g := range got {
		if slices.Contains(want, g) {
			out = append(out, g)
		}
	}
	return out
}

// A Transpose moving the batch axis next to a MatMul's matrix axes
// (perm [1, 0, 2]) and that MatMul compute in float32: ONNX Runtime 1.30
// fuses them into FusedMatMul and crashes creating a session when the
// Transpose is float16. Loading the result is the test: a crash ends the
// test binary.
func TestFP16BatchTransposeBeforeMatMul(t *testing.T) {
	for _, perm := range [][]int64{{1, 0, 2}, {1, 2, 0, 3}, {0, 2, 1}} {
		b := newBuilder(5)
		x := b.Input("x", 2, 3, 4, 4)
		if len(perm) == 3 {
			x = b.Node("Reshape", "x3", []string{x, b.Init("shape", onnx.NewTensor([]int64{3}, []int64{2, 12, 4}))})
		}
		tr := b.Node("Transpose", "tr", []string{x}, onnx.AttrInts("perm", perm...))
		k := int64(4)
		if perm[len(perm)-1] != int64(len(perm)-1) { // [0, 2, 1]: K is 12
			k = 12
		}
		y := b.Node("MatMul", "y", []string{tr, b.weight("w", k, 5)})
		m := b.Model(13, y)
		q, _, err := Quantize(context.Background(), m, Options{Method: FP16}, nil)
		if err != nil {
			t.Fatal(err)
		}
		batch := len(perm) == 4 || perm[0] == 1
		types := elemTypes(newIndex(q))
		for _, op := range []string{"Transpose", "MatMul"} {
			in := nodesOf(q, op)[0].GetInput()[0]
			if got := types[in] == onnx.Float; got != batch {
				t.Errorf("perm %v: %s reads %s of %v; want float32 %v", perm, op, in, types[in], batch)
			}
		}
		in := randomBatches(6, "x", 1, 2, 3, 4, 4)[0]
		if c := cosine(t, run(t, q, in)[y], run(t, m, in)[y]); c < 0.999 {
			t.Errorf("perm %v: cosine to the float32 model %.5f", perm, c)
		}
	}
}
