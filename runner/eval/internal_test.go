package eval

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPercentile(t *testing.T) {
	ms := func(vals ...int) []time.Duration {
		out := make([]time.Duration, len(vals))
		for i, v := range vals {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name     string
		sorted   []time.Duration
		p50, p95 time.Duration
	}{
		{"one run", ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{"three runs", ms(1, 2, 3), 2 * time.Millisecond, 3 * time.Millisecond},
		{"1..100", ms(hundred...), 50 * time.Millisecond, 95 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := []time.Duration{percentile(tc.sorted, 0.50), percentile(tc.sorted, 0.95)}
			if diff := cmp.Diff([]time.Duration{tc.p50, tc.p95}, got); diff != "" {
				t.Errorf("p50, p95 (-want +got):\n%s", diff)
			}
		})
	}
}

// TestZeroPointIndex maps every element of a small tensor to its zero
// point, worked out by hand.
func TestZeroPointIndex(t *testing.T) {
	tests := []struct {
		name        string
		dims, zp    []int64
		axis, block int64
		want        []int
	}{
		{"scalar", []int64{2, 3}, []int64{}, 1, 0, []int{0, 0, 0, 0, 0, 0}},
		{"per column (axis -1)", []int64{2, 3}, []int64{3}, -1, 0, []int{0, 1, 2, 0, 1, 2}},
		{"per row (axis 0)", []int64{2, 3}, []int64{2}, 0, 0, []int{0, 0, 0, 1, 1, 1}},
		// [2,5] in blocks of 2 along axis 1: zero points [2,3].
		{"blocks along axis 1", []int64{2, 5}, []int64{2, 3}, 1, 2, []int{0, 0, 1, 1, 2, 3, 3, 4, 4, 5}},
		// [4,2] in blocks of 3 along axis 0: zero points [2,2].
		{"blocks along axis 0", []int64{4, 2}, []int64{2, 2}, 0, 3, []int{0, 1, 0, 1, 0, 1, 2, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			at, err := zeroPointIndex(tc.dims, tc.zp, tc.axis, tc.block)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]int, product(tc.dims))
			for i := range got {
				got[i] = at(i)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("zero point index per element (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := zeroPointIndex([]int64{2, 3}, []int64{2}, 1, 0); err == nil {
		t.Error("2 zero points along an axis of 3 were accepted")
	}
}
