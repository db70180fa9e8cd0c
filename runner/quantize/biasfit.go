package quantize

import "math"

// An int32 bias has scale input_scale * weight_scale. A channel of tiny
// weights with a large bias (BatchNorm folding and pruning leave such
// channels behind) makes that scale so small that bias/scale leaves the
// int32 range: the bias would saturate and silently shrink. As ONNX
// Runtime's quantizer does (QDQQuantizer._adjust_weight_scale_for_int32_bias),
// such a channel's weight scale is raised until its bias fits.

// biasFitMargin keeps the largest bias a little inside the int32 range, so
// float32 rounding of the scales cannot push it out again.
const biasFitMargin = 1.0001

// biasQRange is the number of int32 steps a symmetric bias range spans.
const biasQRange = float64(math.MaxInt32) - float64(math.MinInt32+1)

// weightScaleFloors returns, for each stored weight whose bias would not
// fit, the smallest scale each of its channels (one entry per scale of
// the weight) may have; every integer reader's bias counts.
func (p *staticPlan) weightScaleFloors(ix *index, o *options, params map[string]Params) map[storedKey][]float64 {
	floors := map[storedKey][]float64{}
	for _, s := range p.slots {
		if !s.integer {
			continue
		}
		channels := 1
		if o.perChannel {
			channels = int(s.weight.dims()[s.axis])
		}
		_, data, in, reason, _ := biasOf(ix, s, params, channels)
		if reason != "" || data == nil {
			continue
		}
		key := storedKey{s.weight.name, s.graph}
		f := floors[key]
		if f == nil {
			f = make([]float64, channels)
		}
		for i, v := range data {
			c := min(i, channels-1)
			f[c] = max(f[c], biasFitMargin*2*math.Abs(float64(v))/biasQRange/float64(in.Scale))
		}
		floors[key] = f
	}
	return floors
}

// raiseScales gives every scale of q below its floor the floor (rounded up
// to float32) and quantizes that channel's data again. The zero point
// stays: widening the range by the same factor on both sides keeps it.
func (q *Quantized) raiseScales(data []float32, floors []float64) {
	if floors == nil {
		return
	}
	qmin, qmax := q.Type.Range()
	outer, dim, inner := 1, 1, len(data)
	if q.Axis >= 0 {
		outer, dim, inner = axisSplit(q.Shape, q.Axis)
	}
	for c, f := range floors {
		if float64(q.Scales[c]) >= f {
			continue
		}
		s := float32(f)
		if float64(s) < f {
			s = math.Nextafter32(s, float32(math.Inf(1)))
		}
		q.Scales[c] = s
		for o := range outer {
			base := (o*dim + c) * inner
			for i, x := range data[base : base+inner] {
				q.Data[base+i] = byte(quantizeValue(x, s, q.ZeroPoints[c], qmin, qmax))
			}
		}
	}
}

// biasCode quantizes a bias value in float64, as ONNX Runtime's quantizer
// does: at int32 magnitudes float32 division would be off by up to 128
// codes.
func biasCode(v, scale float32) int32 {
	r := math.RoundToEven(float64(v) / float64(scale))
	if math.IsNaN(r) { // 0/0: a zero bias under a scale that underflowed
		return 0
	}
	return int32(min(max(r, math.MinInt32), math.MaxInt32))
}
