package compare

import (
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCosine(t *testing.T) {
	tests := []struct {
		name string
		a, b []float32
		want float64
	}{
		{"same", []float32{1, 2, 3}, []float32{1, 2, 3}, 1},
		{"scaled", []float32{1, 2, 3}, []float32{2, 4, 6}, 1},
		{"opposite", []float32{1, -2}, []float32{-1, 2}, -1},
		{"orthogonal", []float32{1, 0}, []float32{0, 3}, 0},
		{"both zero", []float32{0, 0}, []float32{0, 0}, 1},
		{"one zero", []float32{0, 0}, []float32{1, 0}, 0},
		{"empty", nil, nil, 1},
		{"45 degrees", []float32{1, 0}, []float32{1, 1}, 1 / math.Sqrt2},
		// float32 products would overflow; float64 sums do not.
		{"large", []float32{3e30, 4e30}, []float32{3e30, 4e30}, 1},
	}
	for _, tt := range tests {
		if got := Cosine(tt.a, tt.b); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("%s: Cosine = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The error figures of one output: what a 70% error, a silent reference
// or identical outputs measure.
func TestErrors(t *testing.T) {
	type figures struct {
		Relative, MaxAbs, SNRDb float64
		Signal, Noise           float64
	}
	tests := []struct {
		name     string
		got, ref []float32
		want     figures
	}{
		{"identical", []float32{1, -2, 3}, []float32{1, -2, 3}, figures{0, 0, MaxSNRDb, 14, 0}},
		{"70% too large", []float32{1.7}, []float32{1}, figures{0.7, 0.7, 10 * math.Log10(1/0.49), 1, 0.49}},
		{"one value off", []float32{3, 0}, []float32{3, 4}, figures{0.8, 4, 10 * math.Log10(25.0/16), 25, 16}},
		{"sign flipped", []float32{-1, -1}, []float32{1, 1}, figures{2, 2, 10 * math.Log10(2.0/8), 2, 8}},
		{"silent reference", []float32{0, 2}, []float32{0, 0}, figures{1, 2, -MaxSNRDb, 0, 4}},
		{"both silent", []float32{0, 0}, []float32{0, 0}, figures{0, 0, MaxSNRDb, 0, 0}},
		{"empty", nil, nil, figures{0, 0, MaxSNRDb, 0, 0}},
		// float32 squares would overflow; float64 sums do not.
		{"large", []float32{3e30, 4e30}, []float32{3e30, 4e30}, figures{0, 0, MaxSNRDb, 2.5e61, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, n := Energies(tt.got, tt.ref)
			got := figures{RelativeError(tt.got, tt.ref), MaxAbsError(tt.got, tt.ref), SNRDb(s, n), s, n}
			approx := cmp.Comparer(func(a, b float64) bool { return math.Abs(a-b) <= 1e-6*max(1, math.Abs(a)) })
			if d := cmp.Diff(tt.want, got, approx); d != "" {
				t.Errorf("figures (-want +got):\n%s", d)
			}
		})
	}
}

// Ratio over energies summed across samples is the relative error of the
// samples joined into one vector; SNRDb stays within its bounds.
func TestRatioAndSNRBounds(t *testing.T) {
	got, ref := []float32{1.1, 2.2, 0}, []float32{1, 2, 0}
	s1, n1 := Energies(got[:1], ref[:1])
	s2, n2 := Energies(got[1:], ref[1:])
	tests := []struct {
		name      string
		got, want float64
	}{
		{"summed ratio", Ratio(s1+s2, n1+n2), RelativeError(got, ref)},
		{"summed ratio is 10%", Ratio(s1+s2, n1+n2), 0.1},
		{"tiny noise is capped", SNRDb(1, 1e-300), MaxSNRDb},
		{"huge noise is capped", SNRDb(1e-300, 1), -MaxSNRDb},
		{"20 dB", SNRDb(100, 1), 20},
	}
	for _, tt := range tests {
		if math.Abs(tt.got-tt.want) > 1e-6 {
			t.Errorf("%s: %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// Top1 compares argmaxes position by position along the last axis: a
// sequence of T positions of C classes, not one argmax over T×C values.
func TestTop1(t *testing.T) {
	tests := []struct {
		name     string
		got, ref []float32
		classes  int
		agree    int
		pos      int
	}{
		{"one position agrees", []float32{0.1, 0.9}, []float32{0.2, 0.8}, 2, 1, 1},
		{"one position differs", []float32{0.9, 0.1}, []float32{0.2, 0.8}, 2, 0, 1},
		// [T=3, C=2]: positions 0 and 2 agree; the flattened argmax
		// (index 1 against index 5) would say they differ.
		{"sequence, per position", []float32{0.1, 0.9, 0.6, 0.4, 0.3, 0.7}, []float32{0.2, 0.3, 0.1, 0.2, 0.1, 0.4}, 2, 2, 3},
		{"ties take the first", []float32{1, 1}, []float32{2, 1}, 2, 1, 1},
		{"no classes", []float32{1}, []float32{1}, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agree, pos := Top1(tt.got, tt.ref, tt.classes)
			if d := cmp.Diff([2]int{tt.agree, tt.pos}, [2]int{agree, pos}); d != "" {
				t.Errorf("agree, positions (-want +got):\n%s", d)
			}
		})
	}
}
