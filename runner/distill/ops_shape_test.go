package distill

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestReshapeTarget: onnx.ReshapeDims' rules, plus the batch fix for
// shapes that fixed the batch at export time.
func TestReshapeTarget(t *testing.T) {
	tests := []struct {
		in    []int
		shape []int64
		batch int
		want  []int
		err   bool
	}{
		{in: []int{64, 16, 4, 4}, shape: []int64{1, 256}, batch: 64, want: []int{64, 256}}, // mnist-8's constant [1, 256]
		{in: []int{1, 16, 4, 4}, shape: []int64{1, 256}, batch: 1, want: []int{1, 256}},
		{in: []int{64, 16, 4, 4}, shape: []int64{-1, 256}, batch: 64, want: []int{64, 256}},
		{in: []int{64, 16, 4, 4}, shape: []int64{0, -1}, batch: 64, want: []int{64, 256}},
		{in: []int{64, 16, 4, 4}, shape: []int64{2, 100}, batch: 64, err: true},
		{in: []int{64, 16, 4, 4}, shape: []int64{1, 256}, batch: 32, err: true}, // not the batch being trained
		{in: []int{64, 256}, shape: []int64{-2, -128}, batch: 64, err: true},    // negative dimensions
	}
	for _, tc := range tests {
		got, err := reshapeTarget(tc.in, tc.shape, false, tc.batch)
		if (err != nil) != tc.err {
			t.Errorf("reshapeTarget(%v, %v, batch %d) error %v, want error %v", tc.in, tc.shape, tc.batch, err, tc.err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("reshapeTarget(%v, %v, batch %d) (-want +got):\n%s", tc.in, tc.shape, tc.batch, diff)
		}
	}
}
