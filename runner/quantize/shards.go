package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// calibrateShards is calibrate with statistics that merge exactly
// (spec.parallelism): the calibration batches are cut into shard.Units
// units, c.Shards workers each run theirs on a session of their own, and
// partial statistics are combined in shard.TreeSum's fixed order, so the
// ranges are the same for every shard count. Ranges are min/max (exact in
// any order); percentile and entropy take a second pass that counts
// values into histograms of fixed bins over the whole data's range
// (counts add exactly), where calibrate's collectors grow their bins as
// batches come, which depends on the order batches are seen in.
func calibrateShards(ctx context.Context, m *onnx.Model, tensors []string, calib Calibration, c CalibrationOptions) (*calibration, error) {
	if calib == nil {
		return nil, errors.New("static quantization needs calibration data (the job's dataset)")
	}
	batches, seen, err := readBatches(m, calib, c.Samples)
	if err != nil {
		return nil, err
	}
	x := c.Exchange
	if x == nil {
		x = exchange.Local(c.Shards)
	}
	ranges, err := reduceShards(ctx, m, tensors, batches, x, "calibration-range", newMinMaxPart, minMaxCodec, mergeMinMax)
	if err != nil {
		return nil, err
	}
	cal := &calibration{samples: seen, held: batches[:min(heldBatches, len(batches))]}
	switch c.Method {
	case CalibrationMinMax, "":
		cal.ranges = ranges.Ranges()
		return cal, nil
	}
	bins := func() statPart { return newBinsPart(c.Method, ranges.ranges) }
	hist, err := reduceShards(ctx, m, tensors, batches, x, "calibration-histogram", bins, binsCodec(c.Method, ranges.ranges), mergeBins)
	if err != nil {
		return nil, err
	}
	cal.ranges = hist.(*binsPart).ranges(c, ranges.ranges)
	return cal, nil
}

// readBatches reads up to samples samples, as calibrate does.
func readBatches(m *onnx.Model, calib Calibration, samples int) ([]map[string]*onnx.Tensor, int, error) {
	var batches []map[string]*onnx.Tensor
	seen := 0
	for seen < samples {
		batch, err := calib.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("calibration data: %w", err)
		}
		batch, n, err := feed.Truncate(feed.Inputs(m), batch, samples-seen)
		if err != nil {
			return nil, 0, fmt.Errorf("calibration data: %w", err)
		}
		batches = append(batches, batch)
		seen += n
	}
	if seen == 0 {
		return nil, 0, errors.New("calibration data is empty: static quantization needs at least one sample")
	}
	return batches, seen, nil
}

// statPart is the statistics of some units of the calibration batches.
type statPart interface {
	collect(name string, data []float32)
}

// reduceShards runs every unit of batches through m on the shards of x
// this process owns and returns the statistics of all, combined by
// shard.TreeSum (exchange.Reduce, sharing them as round). Tensors that
// are m's inputs (a block's, runner/layerwise) are read from the batches.
func reduceShards[P statPart](ctx context.Context, m *onnx.Model, tensors []string, batches []map[string]*onnx.Tensor, x exchange.Exchange, round string, part func() P, c exchange.Codec[P], merge func(a, b P) P) (P, error) {
	shards := x.Shards()
	var expose []string
	fed := onnx.IndexGraph(m.Proto.GetGraph(), "").Input
	for _, name := range tensors {
		if fed[name] == nil {
			expose = append(expose, name)
		}
	}
	unit := func(sess *feed.Session, u int) (P, error) {
		var zero P
		lo, hi := shard.UnitSamples(u, len(batches))
		if lo == hi {
			return zero, nil
		}
		p := part()
		for _, batch := range batches[lo:hi] {
			if err := ctx.Err(); err != nil {
				return zero, err
			}
			out, err := sess.Run(batch)
			if err != nil {
				return zero, fmt.Errorf("calibration run: %w", err)
			}
			for _, name := range tensors {
				t := out[name]
				if t == nil {
					t = batch[name]
				}
				data, err := t.Float32s()
				if err != nil {
					return zero, fmt.Errorf("calibration: tensor %q: %w", name, err)
				}
				p.collect(name, data)
			}
		}
		return p, nil
	}
	return exchange.Reduce(ctx, x, round, c, func(s int) (P, error) {
		var zero P
		lo, hi := shard.OfUnits(s, shards)
		if b, _ := shard.UnitSamples(lo, len(batches)); b == len(batches) {
			return zero, nil // fewer batches than shards: nothing for this one
		}
		sess, err := feed.Open(m, feed.Options{Name: m.Name + " (calibration)", Expose: expose})
		if err != nil {
			return zero, err
		}
		defer sess.Close()
		return shard.TreeSum(hi-lo, func(k int) (P, error) { return unit(sess, lo+k) }, merge)
	}, merge)
}

// minMaxPart is the finite range of each tensor.
type minMaxPart struct{ *MinMax }

func newMinMaxPart() *minMaxPart { return &minMaxPart{NewMinMax()} }

func (p *minMaxPart) collect(name string, data []float32) { p.Collect(name, data) }

func mergeMinMax(a, b *minMaxPart) *minMaxPart {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	for name, r := range b.ranges {
		if o, ok := a.ranges[name]; ok {
			r = Range{Min: min(o.Min, r.Min), Max: max(o.Max, r.Max)}
		}
		a.ranges[name] = r
	}
	return a
}

// binsPart counts each tensor's values into histogramBins fixed bins:
// |x| over [0, amax] for percentile, x over [-amax, amax] for entropy,
// amax the largest |x| of the whole data (the first pass's range).
type binsPart struct {
	abs    bool
	counts map[string]*histogram
}

func newBinsPart(method CalibrationMethod, whole map[string]Range) statPart {
	p := &binsPart{abs: method == CalibrationPercentile, counts: map[string]*histogram{}}
	for name, r := range whole {
		amax := math.Max(-float64(r.Min), float64(r.Max))
		if p.abs {
			p.counts[name] = newHistogram(histogramBins, 0, amax)
		} else {
			p.counts[name] = newHistogram(histogramBins, -amax, amax)
		}
	}
	return p
}

func (p *binsPart) collect(name string, data []float32) {
	h := p.counts[name]
	for _, x := range data {
		if !isFinite32(x) {
			continue
		}
		v := float64(x)
		if p.abs {
			v = math.Abs(v)
		}
		h.add(v)
	}
}

func mergeBins(a, b statPart) statPart {
	if a == nil {
		return b
	}
	if b == nil {
		return a
	}
	x, y := a.(*binsPart), b.(*binsPart)
	for name, h := range x.counts {
		for i, c := range y.counts[name].counts {
			h.counts[i] += c
		}
	}
	return x
}

// ranges chooses each tensor's range from its histogram as the streaming
// collectors do, clipped to the values seen.
func (p *binsPart) ranges(c CalibrationOptions, whole map[string]Range) map[string]Range {
	out := make(map[string]Range, len(p.counts))
	for _, name := range sortedNames(p.counts) {
		h, r := p.counts[name], whole[name]
		var lo, hi float64
		if p.abs {
			pc := c.Percentile
			if pc == 0 {
				pc = DefaultPercentile
			}
			th := percentileEdge(h, pc)
			lo, hi = -th, th
		} else {
			lo, hi = entropyThreshold(h, quantizedBins)
		}
		out[name] = Range{Min: max(float32(lo), r.Min), Max: min(float32(hi), r.Max)}
	}
	return out
}
