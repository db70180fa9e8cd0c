package prune

import (
	"fmt"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// TestNMHand prunes 2:4 by hand-checkable values: a MatMul [K=4, N=2],
// whose groups run down each column (along K).
func TestNMHand(t *testing.T) {
	node := onnx.NewNode("MatMul", "mm", []string{"x", "w"}, []string{"y"})
	l, err := newLayout(node, []int64{4, 2})
	if err != nil {
		t.Fatal(err)
	}
	// Column 0 (n=0) is 1, -4, 3, 2: keeps -4 and 3. Column 1 is
	// 5, 6, -7, 0.5: keeps 6 and -7.
	vals := [][]float32{{1, 5, -4, 6, 3, -7, 2, 0.5}}
	masks, dense := nm(vals, []*layout{l}, &options{n: 2, m: 4}, func(int) {})
	if diff := cmp.Diff([][]float32{{0, 0, -4, 6, 3, -7, 0, 0}}, vals); diff != "" {
		t.Errorf("pruned (-want +got):\n%s", diff)
	}
	if dense[0] != 0 || masks[0] != "2:4 along the input dimension K" {
		t.Errorf("dense %d, mask %q", dense[0], masks[0])
	}
}

// TestNMStructure prunes random weights of every layout and checks the
// pattern: in every group of m along the input dimension exactly m-n
// weights are zero and they are the smallest; the columns left over when
// the dimension is not a multiple of m are untouched.
func TestNMStructure(t *testing.T) {
	tests := []struct {
		op    string
		dims  []int64
		attrs []int64 // group, transB
		n, m  int
		// group of m positions: flat indices of the weights in each
		// group, computed here from the ONNX layout independently of
		// layout.at.
		groups func() [][]int
		dense  int
	}{{
		// Conv [O=3, I=8, 2, 2]: groups along I for each (o, ky, kx).
		op: "Conv", dims: []int64{3, 8, 2, 2}, attrs: []int64{1, 0}, n: 2, m: 4,
		groups: func() [][]int {
			var gs [][]int
			for o := 0; o < 3; o++ {
				for p := 0; p < 4; p++ {
					for i0 := 0; i0 < 8; i0 += 4 {
						var g []int
						for i := i0; i < i0+4; i++ {
							g = append(g, (o*8+i)*4+p)
						}
						gs = append(gs, g)
					}
				}
			}
			return gs
		},
	}, {
		// Conv [O=2, I=6, 1, 3]: each (o, kx) has one group of 4 input
		// channels and 2 left dense.
		op: "Conv", dims: []int64{2, 6, 1, 3}, attrs: []int64{1, 0}, n: 2, m: 4, dense: 2 * 3 * 2,
		groups: func() [][]int {
			var gs [][]int
			for o := 0; o < 2; o++ {
				for p := 0; p < 3; p++ {
					var g []int
					for i := 0; i < 4; i++ {
						g = append(g, (o*6+i)*3+p)
					}
					gs = append(gs, g)
				}
			}
			return gs
		},
	}, {
		// Grouped Conv [O=4, I/g=4, 1, 1], group 2: the same per group.
		op: "Conv", dims: []int64{4, 4, 1, 1}, attrs: []int64{2, 0}, n: 1, m: 4,
		groups: func() [][]int {
			var gs [][]int
			for o := 0; o < 4; o++ {
				gs = append(gs, []int{o * 4, o*4 + 1, o*4 + 2, o*4 + 3})
			}
			return gs
		},
	}, {
		// MatMul [K=8, N=3]: groups down each column.
		op: "MatMul", dims: []int64{8, 3}, n: 2, m: 4,
		groups: func() [][]int {
			var gs [][]int
			for n := 0; n < 3; n++ {
				for k0 := 0; k0 < 8; k0 += 4 {
					gs = append(gs, []int{k0*3 + n, (k0+1)*3 + n, (k0+2)*3 + n, (k0+3)*3 + n})
				}
			}
			return gs
		},
	}, {
		// Gemm transB [N=3, K=8]: groups along each row.
		op: "Gemm", dims: []int64{3, 8}, attrs: []int64{1, 1}, n: 1, m: 2,
		groups: func() [][]int {
			var gs [][]int
			for n := 0; n < 3; n++ {
				for k := 0; k < 8; k += 2 {
					gs = append(gs, []int{n*8 + k, n*8 + k + 1})
				}
			}
			return gs
		},
	}, {
		// ConvTranspose [I=8, O=2, 2, 2]: groups along I for each
		// (o, ky, kx).
		op: "ConvTranspose", dims: []int64{8, 2, 2, 2}, attrs: []int64{1, 0}, n: 2, m: 4,
		groups: func() [][]int {
			var gs [][]int
			for o := 0; o < 2; o++ {
				for p := 0; p < 4; p++ {
					for i0 := 0; i0 < 8; i0 += 4 {
						var g []int
						for i := i0; i < i0+4; i++ {
							g = append(g, (i*2+o)*4+p)
						}
						gs = append(gs, g)
					}
				}
			}
			return gs
		},
	}}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s%v %d:%d", tc.op, tc.dims, tc.n, tc.m), func(t *testing.T) {
			node := onnx.NewNode(tc.op, "node", []string{"x", "w"}, []string{"y"})
			if tc.attrs != nil {
				node.Attribute = append(node.Attribute, onnx.AttrInt("group", tc.attrs[0]), onnx.AttrInt("transB", tc.attrs[1]))
			}
			l, err := newLayout(node, tc.dims)
			if err != nil {
				t.Fatal(err)
			}
			before := newBuilder("").Uniform(onnx.NumElements(tc.dims))
			vals := [][]float32{append([]float32{}, before...)}
			_, dense := nm(vals, []*layout{l}, &options{n: tc.n, m: tc.m, seed: 1}, func(int) {})
			inGroup := map[int]bool{}
			for _, g := range tc.groups() {
				byMag := append([]int{}, g...)
				sort.Slice(byMag, func(a, b int) bool { return absf(before[byMag[a]]) < absf(before[byMag[b]]) })
				for rank, idx := range byMag {
					inGroup[idx] = true
					wantZero := rank < tc.m-tc.n
					if (vals[0][idx] == 0) != wantZero {
						t.Errorf("group %v: element %d (|w| rank %d) zero=%v, want %v", g, idx, rank, vals[0][idx] == 0, wantZero)
					}
				}
			}
			for i, v := range vals[0] {
				if !inGroup[i] && v != before[i] {
					t.Errorf("element %d is in no group but changed: %v -> %v", i, before[i], v)
				}
			}
			if len(inGroup)+tc.dense != len(before) || dense[0] != int64(tc.dense) {
				t.Errorf("%d in groups, %d reported dense (want %d), of %d", len(inGroup), dense[0], tc.dense, len(before))
			}
		})
	}
}
