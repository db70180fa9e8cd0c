package quantize

import (
	"fmt"
	"math"
	"sort"
)

// Range is the calibrated range of one activation tensor.
type Range struct {
	Min, Max float32
}

// Collector accumulates the values of named float tensors batch by batch
// and then chooses a range for each.
type Collector interface {
	// Collect adds one batch of a tensor's values.
	Collect(name string, data []float32)
	// Ranges returns the chosen range of every tensor collected.
	Ranges() map[string]Range
}

// Histogram sizes, as TensorRT and ONNX Runtime's calibrate.py use them.
const (
	histogramBins = 2048
	quantizedBins = 128
)

// NewCollector returns the collector of calibration options. An empty
// method is CalibrationMinMax; a zero percentile is DefaultPercentile.
func NewCollector(c CalibrationOptions) (Collector, error) {
	switch c.Method {
	case CalibrationMinMax, "":
		return NewMinMax(), nil
	case CalibrationPercentile:
		p := c.Percentile
		if p == 0 {
			p = DefaultPercentile
		}
		if math.IsNaN(p) || p < 50 || p > 100 {
			return nil, fmt.Errorf("calibration.percentile %v: want a number in [50, 100]", c.Percentile)
		}
		return NewPercentile(p, histogramBins), nil
	case CalibrationEntropy:
		return NewEntropy(histogramBins, quantizedBins), nil
	}
	return nil, fmt.Errorf("calibration.method %q: want minmax, percentile or entropy", c.Method)
}

// MinMax keeps the smallest and largest value seen.
type MinMax struct {
	ranges map[string]Range
}

// NewMinMax returns an empty minmax collector.
func NewMinMax() *MinMax { return &MinMax{ranges: map[string]Range{}} }

// Collect implements Collector.
func (m *MinMax) Collect(name string, data []float32) {
	lo, hi := finiteMinMax(data)
	if r, ok := m.ranges[name]; ok {
		lo, hi = min(lo, r.Min), max(hi, r.Max)
	}
	m.ranges[name] = Range{Min: lo, Max: hi}
}

// Ranges implements Collector.
func (m *MinMax) Ranges() map[string]Range {
	out := make(map[string]Range, len(m.ranges))
	for k, v := range m.ranges {
		out[k] = v
	}
	return out
}

// finiteMinMax is the range of the finite values (an Inf or NaN activation
// would make every scale meaningless); 0, 0 when there are none.
func finiteMinMax(data []float32) (lo, hi float32) {
	lo, hi = float32(math.Inf(1)), float32(math.Inf(-1))
	for _, x := range data {
		if x-x != 0 { // NaN or Inf
			continue
		}
		lo, hi = min(lo, x), max(hi, x)
	}
	if lo > hi {
		return 0, 0
	}
	return lo, hi
}

// sortedNames returns the keys of m in order, so results never depend on
// map iteration.
func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}
