package prune

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// TestPerUnit checks which bias shapes broadcast one value per output unit.
func TestPerUnit(t *testing.T) {
	tests := []struct {
		what              string
		dims              []int64
		units, rank, axis int
		want              bool
	}{
		{"Conv output [N,8,H,W] + [8,1,1]", []int64{8, 1, 1}, 8, 4, 1, true},
		{"+ [1,8,1,1]", []int64{1, 8, 1, 1}, 8, 4, 1, true},
		{"+ [8] broadcasts along W", []int64{8}, 8, 4, 1, false},
		{"+ [8,1] broadcasts along H", []int64{8, 1}, 8, 4, 1, false},
		{"+ [2,8,1,1] differs per sample", []int64{2, 8, 1, 1}, 8, 4, 1, false},
		{"Gemm output [M,10] + [10]", []int64{10}, 10, 2, 1, true},
		{"+ [1,10]", []int64{1, 10}, 10, 2, 1, true},
		{"+ [5,10] differs per row", []int64{5, 10}, 10, 2, 1, false},
		{"+ [9] is not one per unit", []int64{9}, 10, 2, 1, false},
		{"Conv input B [O]", []int64{10}, 10, 1, 0, true},
	}
	for _, tc := range tests {
		if got := perUnit(tc.dims, tc.units, tc.rank, tc.axis); got != tc.want {
			t.Errorf("%s: perUnit(%v) = %v, want %v", tc.what, tc.dims, got, tc.want)
		}
	}
}

// TestGemmBiasNeedsUnitScales: a Gemm's C is updated with its B only when
// alpha and beta are 1, where C is the weight of a constant input 1.
func TestGemmBiasNeedsUnitScales(t *testing.T) {
	for _, tc := range []struct {
		alpha, beta float32
		want        string
	}{{1, 1, "C"}, {2, 1, ""}, {1, 0.5, ""}} {
		b := newBuilder("gemm")
		y := b.NamedNode("Gemm", "gemm", []string{b.Input("A", 2, 4), b.weight("B", 4, 3), b.weight("C", 3)}, []string{"Y"},
			onnx.AttrFloat("alpha", tc.alpha), onnx.AttrFloat("beta", tc.beta))
		m := b.Model(13, y)
		o, _ := Options{Method: Hessian, Sparsity: 0.5}.parse()
		targets, _ := findTargets(m, o)
		got := ""
		if w := findBiases(m, targets)[0]; w != nil {
			got = w.Name
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("alpha %v beta %v: bias (-want +got):\n%s", tc.alpha, tc.beta, diff)
		}
	}
}
