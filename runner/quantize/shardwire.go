package quantize

import (
	"fmt"

	"github.com/kompress/kompress/runner/exchange"
)

// minMaxCodec encodes a shard's ranges, by tensor name in sorted order.
var minMaxCodec = exchange.Codec[*minMaxPart]{
	Encode: func(p *minMaxPart) []byte {
		var w exchange.Writer
		names := sortedNames(p.ranges)
		w.Int(int64(len(names)))
		for _, name := range names {
			r := p.ranges[name]
			w.String(name)
			w.Float32(r.Min)
			w.Float32(r.Max)
		}
		return w.Bytes()
	},
	Decode: func(b []byte) (*minMaxPart, error) {
		r := exchange.NewReader(b)
		p := newMinMaxPart()
		for range r.Len(16) {
			name := r.String()
			p.ranges[name] = Range{Min: r.Float32(), Max: r.Float32()}
		}
		return p, r.Err()
	},
}

// binsCodec encodes a shard's histograms, by tensor name in sorted order:
// the counts only, as the bins are fixed by the first pass's ranges
// (whole), which every shard has.
func binsCodec(method CalibrationMethod, whole map[string]Range) exchange.Codec[statPart] {
	return exchange.Codec[statPart]{
		Encode: func(p statPart) []byte {
			b := p.(*binsPart)
			var w exchange.Writer
			names := sortedNames(b.counts)
			w.Int(int64(len(names)))
			for _, name := range names {
				w.String(name)
				w.Float64s(b.counts[name].counts)
			}
			return w.Bytes()
		},
		Decode: func(data []byte) (statPart, error) {
			p := newBinsPart(method, whole).(*binsPart)
			r := exchange.NewReader(data)
			n := r.Len(16)
			if n != len(p.counts) {
				return nil, fmt.Errorf("%d histograms, the ranges have %d", n, len(p.counts))
			}
			for range n {
				name := r.String()
				counts := r.Float64s()
				h, ok := p.counts[name]
				if !ok || len(counts) != len(h.counts) {
					return nil, fmt.Errorf("histogram of %q (%d bins) is not one of the ranges' or has the wrong size", name, len(counts))
				}
				h.counts = counts
			}
			return p, r.Err()
		},
	}
}
