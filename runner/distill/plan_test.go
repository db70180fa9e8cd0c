package distill

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/onnx"
)

// TestRoleOf: a layer's weight keeps its zeros and trains, its bias
// trains, wherever the operator table puts them; a constant operand of a
// matrix product is a matrix too; what no kernel trains stays frozen.
func TestRoleOf(t *testing.T) {
	node := onnx.NewNode
	tests := []struct {
		op    string
		n     int // inputs
		attrs int64
		want  []role
	}{
		{"Conv", 3, 0, []role{roleTrain, rolePrune, roleTrain}},
		{"Gemm", 3, 0, []role{rolePrune, rolePrune, roleTrain}},
		{"Gemm", 3, 1, []role{rolePrune, rolePrune, roleTrain}}, // transB: same inputs
		{"MatMul", 2, 0, []role{rolePrune, rolePrune}},
		{"Gather", 2, 0, []role{roleFrozen, roleFrozen}},
		{"ConvTranspose", 3, 0, []role{roleFrozen, roleFrozen, roleFrozen}}, // no kernel
		{"BatchNormalization", 5, 0, []role{roleFrozen, roleTrain, roleTrain, roleFrozen, roleFrozen}},
	}
	for _, tc := range tests {
		inputs := make([]string, tc.n)
		for i := range inputs {
			inputs[i] = string(rune('a' + i))
		}
		n := node(tc.op, "", inputs, []string{"y"}, onnx.AttrInt("transB", tc.attrs))
		var got []role
		for i := range tc.n {
			got = append(got, roleOf(n, i, 16))
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (transB %d) roles by input (-want +got):\n%s", tc.op, tc.attrs, diff)
		}
	}
}
