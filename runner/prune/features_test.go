package prune

import (
	"fmt"
	"math"
	"testing"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// TestConvPatchesMatchORT checks the Conv layout and the im2col patches
// against ONNX Runtime: for every output position, the layout's row r of
// group g times the patch must be ONNX Runtime's output channel g*O/g+r
// there. That is what makes H = 2·XᵀX the Hessian of the right product.
func TestConvPatchesMatchORT(t *testing.T) {
	orttest.Require(t)
	tests := []struct {
		name  string
		x, w  []int64
		attrs []*onnxpb.AttributeProto
	}{
		{"plain 3x3", []int64{2, 3, 5, 5}, []int64{4, 3, 3, 3}, nil},
		{"group 2, strides, pads, dilations", []int64{2, 4, 7, 6}, []int64{6, 2, 3, 2}, []*onnxpb.AttributeProto{
			onnx.AttrInt("group", 2), onnx.AttrInts("strides", 2, 1), onnx.AttrInts("pads", 1, 0, 1, 1), onnx.AttrInts("dilations", 1, 2)}},
		{"depthwise SAME_UPPER stride 2", []int64{1, 3, 6, 5}, []int64{3, 1, 3, 3}, []*onnxpb.AttributeProto{
			onnx.AttrInt("group", 3), onnx.AttrString("auto_pad", "SAME_UPPER"), onnx.AttrInts("strides", 2, 2)}},
		{"SAME_LOWER 2x2", []int64{1, 2, 5, 5}, []int64{2, 2, 2, 2}, []*onnxpb.AttributeProto{
			onnx.AttrString("auto_pad", "SAME_LOWER")}},
		{"VALID", []int64{1, 2, 5, 4}, []int64{3, 2, 3, 2}, []*onnxpb.AttributeProto{onnx.AttrString("auto_pad", "VALID")}},
		{"1-D", []int64{2, 3, 9}, []int64{4, 3, 3}, []*onnxpb.AttributeProto{onnx.AttrInts("pads", 2, 0), onnx.AttrInts("strides", 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBuilder("conv")
			xdims := make([]onnx.Dim, len(tc.x))
			for i, d := range tc.x {
				xdims[i] = int(d)
			}
			m := b.Model(13, b.NamedNode("Conv", "conv", []string{b.Input("X", xdims...), b.weight("W", tc.w...)}, []string{"Y"}, tc.attrs...))
			x := b.Uniform(onnx.NumElements(tc.x))
			out, err := session(t, "conv", m).Run(map[string]*onnx.Tensor{"X": onnx.NewTensor(tc.x, x)})
			if err != nil {
				t.Fatal(err)
			}
			y, _ := out["Y"].Float32s()
			w, _ := m.Weight("W").Float32s()
			node := m.Proto.GetGraph().GetNode()[0]
			l, err := newLayout(node, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			geo, err := convGeometry(node, tc.x[2:], l.kernel)
			if err != nil {
				t.Fatal(err)
			}
			ydims := out["Y"].Dims
			if got := int64(geo.out[0] * geo.out[1]); got != int64(onnx.NumElements(ydims[2:])) {
				t.Fatalf("geometry gives %v outputs, ONNX Runtime %v", geo.out, ydims)
			}
			n, c, hw := int(tc.x[0]), int(tc.x[1]), onnx.NumElements(tc.x[2:])
			row := make([]float64, l.cols)
			for s := 0; s < n; s++ {
				for g := 0; g < l.groups; g++ {
					plane := x[(s*c+g*l.span)*hw:]
					for oy := 0; oy < geo.out[0]; oy++ {
						for ox := 0; ox < geo.out[1]; ox++ {
							geo.patch(row, plane, oy, ox, l.span)
							for r := 0; r < l.rows; r++ {
								var dot float64
								for col := 0; col < l.cols; col++ {
									dot += float64(w[l.at(g, r, col)]) * row[col]
								}
								o := g*l.rows + r
								want := y[((s*int(ydims[1])+o)*geo.out[0]+oy)*geo.out[1]+ox]
								if math.Abs(dot-float64(want)) > 1e-4 {
									t.Fatalf("sample %d channel %d at (%d,%d): layout·patch %v, ONNX Runtime %v", s, o, oy, ox, dot, want)
								}
							}
						}
					}
				}
			}
		})
	}
}

// TestHessianRows checks the rows MatMul and Gemm inputs give: a [2, 3, K]
// MatMul input is 6 rows, a Gemm input with transA is read by columns.
func TestHessianRows(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6} // as [2, 3] or [3, 2]
	gram := func(rows [][]float64) []float64 {
		k := len(rows[0])
		h := make([]float64, k*k)
		for _, r := range rows {
			for i := 0; i < k; i++ {
				for j := i; j < k; j++ {
					h[i*k+j] += 2 * r[i] * r[j] / float64(len(rows))
				}
			}
		}
		return h
	}
	tests := []struct {
		op    string
		trans int64
		wdims []int64
		xdims []int64
		rows  [][]float64
	}{
		{"MatMul", 0, []int64{3, 5}, []int64{2, 3}, [][]float64{{1, 2, 3}, {4, 5, 6}}},
		{"MatMul", 0, []int64{2, 5}, []int64{1, 3, 2}, [][]float64{{1, 2}, {3, 4}, {5, 6}}},
		{"Gemm", 1, []int64{2, 5}, []int64{2, 3}, [][]float64{{1, 4}, {2, 5}, {3, 6}}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.op, tc.xdims), func(t *testing.T) {
			node := onnx.NewNode(tc.op, "n", []string{"x", "w"}, []string{"y"}, onnx.AttrInt("transA", tc.trans))
			l, err := newLayout(node, tc.wdims)
			if err != nil {
				t.Fatal(err)
			}
			a := newHessianAcc(l, false)
			if err := a.add(node, onnx.NewTensor(tc.xdims, x)); err != nil {
				t.Fatal(err)
			}
			got, want := a.hessians()[0], gram(tc.rows)
			for i := range want {
				if math.Abs(got[i]-want[i]) > 1e-12 && (i/l.cols <= i%l.cols) {
					t.Fatalf("H = %v, want %v (upper triangle)", got, want)
				}
			}
		})
	}
}
