package quantize

import (
	"math"
	"testing"
)

func TestIsFinite32(t *testing.T) {
	for _, tc := range []struct {
		x    float32
		want bool
	}{
		{0, true}, {-1.5, true}, {math.MaxFloat32, true}, {-math.MaxFloat32, true},
		{math.SmallestNonzeroFloat32, true}, {float32(math.Inf(1)), false},
		{float32(math.Inf(-1)), false}, {float32(math.NaN()), false},
		{math.Float32frombits(0xffc00001), false}, // a negative NaN with a payload
	} {
		if got := isFinite32(tc.x); got != tc.want {
			t.Errorf("isFinite32(%v) = %v, want %v", tc.x, got, tc.want)
		}
	}
}
