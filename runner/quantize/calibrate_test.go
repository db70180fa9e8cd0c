package quantize

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMinMax(t *testing.T) {
	c := NewMinMax()
	c.Collect("a", []float32{1, -2, 3})
	c.Collect("a", []float32{0.5, 4, float32(math.NaN()), float32(math.Inf(1))})
	c.Collect("b", []float32{2, 5})
	want := map[string]Range{"a": {-2, 4}, "b": {2, 5}}
	if diff := cmp.Diff(want, c.Ranges()); diff != "" {
		t.Errorf("Ranges (-want +got):\n%s", diff)
	}
}

func TestPercentile(t *testing.T) {
	seq := func(from, to int) []float32 {
		var out []float32
		for v := from; v <= to; v++ {
			out = append(out, float32(v))
		}
		return out
	}
	tests := []struct {
		name       string
		batches    [][]float32
		bins       int
		percentile float64
		want       Range
	}{
		{
			// |x| over [0, 100] in 100 bins: bins 1..98 hold one value,
			// bin 99 holds 99 and 100. The cdf first reaches 0.905 in bin
			// 91, whose left edge is 91; the lower end clips to the min, 1.
			name: "positive values", batches: [][]float32{seq(1, 100)},
			bins: 100, percentile: 90.5, want: Range{1, 91},
		},
		{
			// ±1..±50: |x| twice each, so bin i ends at cdf 2i/100 and
			// first reaches 0.95 in bin 48.
			name: "symmetric values", batches: [][]float32{seq(-50, -1), seq(1, 50)},
			bins: 50, percentile: 95, want: Range{-48, 48},
		},
		{
			name: "100 keeps the extremes", batches: [][]float32{seq(-3, 10)},
			bins: 64, percentile: 100, want: Range{-3, 10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewPercentile(tt.percentile, tt.bins)
			for _, b := range tt.batches {
				c.Collect("x", b)
			}
			if diff := cmp.Diff(map[string]Range{"x": tt.want}, c.Ranges()); diff != "" {
				t.Errorf("Ranges (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPercentileGrowsWithLaterBatches(t *testing.T) {
	c := NewPercentile(100, 10)
	c.Collect("x", []float32{0, 10}) // width 1 over [0, 10]
	c.Collect("x", []float32{-13.5})
	h := c.tensors["x"].h
	// Four bins of width 1 are appended to cover 13.5.
	if len(h.counts) != 14 || h.hi != 14 {
		t.Fatalf("histogram has %d bins up to %v, want 14 bins up to 14", len(h.counts), h.hi)
	}
	if h.counts[13] != 1 || h.counts[0] != 1 || h.counts[9] != 1 {
		t.Errorf("counts = %v, want one each in bins 0, 9 and 13", h.counts)
	}
	// Even at 100% the threshold is the left edge of the last non-empty
	// bin (13), as in calibrate.py; the max clips it to 10.
	if got, want := c.Ranges()["x"], (Range{-13, 10}); got != want {
		t.Errorf("range = %v, want %v", got, want)
	}
}

func TestEntropyHandComputed(t *testing.T) {
	// 8 bins over [-4, 4], 4 quantized bins. The histogram is
	// [0 0 0 10 10 5 0 1]; the windows are i=2 (bins 2..6, KL≈0.31),
	// i=3 (bins 1..7, KL≈2.3) and i=4 (all, KL≈0.40). The best window
	// [-2, 3) clips to the data's min: [-0.5, 3].
	var data []float32
	for range 10 {
		data = append(data, -0.5, 0.5)
	}
	for range 5 {
		data = append(data, 1.5)
	}
	data = append(data, 4)
	c := NewEntropy(8, 4)
	c.Collect("x", data)
	if diff := cmp.Diff([]float64{0, 0, 0, 10, 10, 5, 0, 1}, c.tensors["x"].h.counts); diff != "" {
		t.Fatalf("histogram (-want +got):\n%s", diff)
	}
	if got, want := c.Ranges()["x"], (Range{-0.5, 3}); got != want {
		t.Errorf("range = %v, want %v", got, want)
	}
}

func TestEntropyMergeWidensByWholeBins(t *testing.T) {
	c := NewEntropy(8, 4)
	c.Collect("x", []float32{-1, 1}) // stride 0.25 over [-1, 1]
	c.Collect("x", []float32{2.5})
	v := c.tensors["x"]
	// half = floor((2.5-1)/0.25)+1 = 7 bins each side: 22 bins to ±2.75.
	if len(v.h.counts) != 22 || v.threshold != 2.75 {
		t.Fatalf("merged histogram has %d bins to ±%v, want 22 to ±2.75", len(v.h.counts), v.threshold)
	}
	// The old counts (first and last old bins) moved by 7; 2.5 lands in
	// bin (2.5+2.75)/0.25 = 21.
	want := make([]float64, 22)
	want[7], want[14], want[21] = 1, 1, 1
	if diff := cmp.Diff(want, v.h.counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestEntropyClipsOutliers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	data := make([]float32, 20000)
	for i := range data {
		data[i] = float32(r.NormFloat64())
	}
	data[0] = 60 // one far outlier
	c := NewEntropy(histogramBins, quantizedBins)
	c.Collect("x", data[:10000])
	c.Collect("x", data[10000:])
	got := c.Ranges()["x"]
	if got.Max > 20 || got.Max < 2 {
		t.Errorf("entropy max = %v: want the outlier 60 clipped, the bulk (|x| < ~4) kept", got.Max)
	}
	mm := NewMinMax()
	mm.Collect("x", data)
	if mm.Ranges()["x"].Max != 60 {
		t.Errorf("minmax max = %v, want 60", mm.Ranges()["x"].Max)
	}
}

func TestNewCollector(t *testing.T) {
	tests := []struct {
		opts    CalibrationOptions
		want    string
		wantErr string
	}{
		{CalibrationOptions{}, "*quantize.MinMax", ""},
		{CalibrationOptions{Method: CalibrationMinMax, Percentile: 10}, "*quantize.MinMax", ""}, // minmax reads no percentile
		{CalibrationOptions{Method: CalibrationPercentile}, "*quantize.Percentile", ""},
		{CalibrationOptions{Method: CalibrationPercentile, Percentile: 99.9}, "*quantize.Percentile", ""},
		{CalibrationOptions{Method: CalibrationEntropy}, "*quantize.Entropy", ""},
		{CalibrationOptions{Method: CalibrationPercentile, Percentile: math.NaN()}, "", "calibration.percentile NaN: want a number in [50, 100]"},
		{CalibrationOptions{Method: CalibrationPercentile, Percentile: 101}, "", "calibration.percentile 101: want a number in [50, 100]"},
		{CalibrationOptions{Method: CalibrationPercentile, Percentile: 49.9}, "", "calibration.percentile 49.9: want a number in [50, 100]"},
		{CalibrationOptions{Method: "kl"}, "", `calibration.method "kl": want minmax, percentile or entropy`},
	}
	for _, tt := range tests {
		c, err := NewCollector(tt.opts)
		if err != nil || tt.wantErr != "" {
			if err == nil || err.Error() != tt.wantErr {
				t.Errorf("NewCollector(%+v) error = %v, want %q", tt.opts, err, tt.wantErr)
			}
			continue
		}
		if got := typeName(c); got != tt.want {
			t.Errorf("NewCollector(%+v) = %s, want %s", tt.opts, got, tt.want)
		}
	}
	for p, want := range map[float64]float64{0: 99.99, 99.9: 99.9, 50: 50, 100: 100} {
		c, _ := NewCollector(CalibrationOptions{Method: CalibrationPercentile, Percentile: p})
		if pc := c.(*Percentile); pc.percentile != want || pc.bins != 2048 {
			t.Errorf("percentile %v: collector keeps %v%% over %d bins, want %v%% over 2048", p, pc.percentile, pc.bins, want)
		}
	}
}

func typeName(v any) string {
	switch v.(type) {
	case *MinMax:
		return "*quantize.MinMax"
	case *Percentile:
		return "*quantize.Percentile"
	case *Entropy:
		return "*quantize.Entropy"
	}
	return "unknown"
}

// A later batch whose range dwarfs the first one's would widen the
// histogram by whole old bins: billions of them for a first batch of
// near-zero values. Bins are merged instead, the histogram stays
// symmetric and bounded, and every value stays counted.
func TestEntropyMergeBoundsBins(t *testing.T) {
	c := NewEntropy(histogramBins, quantizedBins)
	c.Collect("x", []float32{0, 1e-6})
	c.Collect("x", []float32{1000, -3})
	v := c.tensors["x"]
	if n := len(v.h.counts); n > maxEntropyBins(histogramBins) {
		t.Errorf("histogram has %d bins, want at most %d", n, maxEntropyBins(histogramBins))
	}
	if v.h.lo != -v.threshold || v.h.hi != v.threshold || v.threshold < 1000 {
		t.Errorf("histogram spans [%v, %v] with threshold %v, want ±threshold >= 1000", v.h.lo, v.h.hi, v.threshold)
	}
	if got := v.h.total(); got != 4 {
		t.Errorf("histogram counts %v values, want 4", got)
	}
	if r := c.Ranges()["x"]; r.Min < -3 || r.Max > 1000 {
		t.Errorf("range %v outside the values seen [-3, 1000]", r)
	}
}

func TestEntropyCoarsenKeepsSymmetry(t *testing.T) {
	tests := []struct {
		name   string
		counts []float64
		th     float64
		want   []float64
		wantTh float64
	}{
		// Even: pairs. [-2, 2] in 4 bins of 1 -> 2 bins of 2.
		{"even", []float64{1, 2, 3, 4}, 2, []float64{3, 7}, 2},
		// 5 bins of 1 over [-2.5, 2.5]: one empty bin on each side makes
		// 7, two make 9 (divisible by 3): 3 bins of 3 over [-4.5, 4.5].
		{"odd", []float64{1, 2, 3, 4, 5}, 2.5, []float64{0 + 0 + 1, 2 + 3 + 4, 5 + 0 + 0}, 4.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &valueHistogram{h: newHistogram(len(tt.counts), -tt.th, tt.th), threshold: tt.th}
			copy(v.h.counts, tt.counts)
			v.coarsen()
			if diff := cmp.Diff(tt.want, v.h.counts); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
			if v.threshold != tt.wantTh || v.h.lo != -tt.wantTh || v.h.hi != tt.wantTh {
				t.Errorf("spans [%v, %v], threshold %v, want ±%v", v.h.lo, v.h.hi, v.threshold, tt.wantTh)
			}
		})
	}
}
