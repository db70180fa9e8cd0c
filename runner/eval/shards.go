package eval

import (
	"context"
	"fmt"
	"sync"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
)

// scoreShards scores spans as the shards of req.Exchange: the spans are
// cut into shard.Units units, each unit's tally is summed in span order
// (its spans scored by workers goroutines), units are combined by
// shard.TreeSum, and exchange.Reduce combines the shards' by the same
// tree. Counts add exactly; the float sums are added in the same order
// for every shard count.
func scoreShards(ctx context.Context, req Request, data, srcData *feed.Data, sess, src *feed.Session, workers int, spans []feed.Span) (*tally, error) {
	x := req.Exchange
	shards := x.Shards()
	var mu sync.Mutex
	done := 0
	unit := func(u int) (*tally, error) {
		lo, hi := shard.UnitSamples(u, len(spans))
		if lo == hi {
			return nil, nil
		}
		sum := &tally{}
		err := feed.Parallel(ctx, hi-lo, workers, func(i int) (tally, error) {
			var t tally
			err := scoreBatch(req, data, srcData, sess, src, spans[lo+i], &t)
			return t, err
		}, func(i int, t tally) error {
			sum.merge(t)
			mu.Lock()
			done += spans[lo+i].N
			if req.Progress != nil {
				req.Progress(done, data.Len())
			}
			mu.Unlock()
			return nil
		})
		return sum, err
	}
	return exchange.Reduce(ctx, x, "evaluation", tallyCodec, func(s int) (*tally, error) {
		lo, hi := shard.OfUnits(s, shards)
		return shard.TreeSum(hi-lo, func(k int) (*tally, error) { return unit(lo + k) }, mergeTallies)
	}, mergeTallies)
}

// mergeTallies adds b to a (nil is an empty tally).
func mergeTallies(a, b *tally) *tally {
	if a == nil {
		return b
	}
	if b != nil {
		a.merge(*b)
	}
	return a
}

// tallyCodec encodes a shard's scores for the exchange.
var tallyCodec = exchange.Codec[*tally]{
	Encode: func(t *tally) []byte {
		var w exchange.Writer
		w.Int(int64(t.n))
		w.Int(int64(t.correct))
		w.Int(int64(t.sourceCorrect))
		w.Int(int64(len(t.outs)))
		for _, o := range t.outs {
			w.String(string(o.kind))
			w.Int(int64(o.classes))
			w.Int(int64(o.positions))
			w.Float64s([]float64{o.relative, o.signal, o.noise, o.maxAbs, o.cosine})
			w.Int(int64(o.agree))
			w.Int(int64(o.compared))
		}
		return w.Bytes()
	},
	Decode: func(b []byte) (*tally, error) {
		r := exchange.NewReader(b)
		t := &tally{n: int(r.Int()), correct: int(r.Int()), sourceCorrect: int(r.Int())}
		if n := r.Len(8); n > 0 {
			t.outs = make([]outputTally, n)
		}
		for i := range t.outs {
			o := &t.outs[i]
			o.kind = OutputKind(r.String())
			o.classes, o.positions = int(r.Int()), int(r.Int())
			f := r.Float64s()
			if len(f) != 5 {
				return nil, fmt.Errorf("output %d: %d sums, want 5", i, len(f))
			}
			o.relative, o.signal, o.noise, o.maxAbs, o.cosine = f[0], f[1], f[2], f[3], f[4]
			o.agree, o.compared = int(r.Int()), int(r.Int())
		}
		return t, r.Err()
	},
}
