package exchange

import (
	"context"
	"fmt"
	"reflect"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/feed"
)

// Exchange is where the shards of a stage's data passes meet.
type Exchange interface {
	// Shards is the shard count, a power of two up to shard.Units.
	Shards() int
	// Mine lists the shards this process computes, ascending.
	Mine() []int
	// Shared returns this process's partials of round that an earlier
	// attempt already shared (a retried index), by shard.
	Shared(ctx context.Context, round string) (map[int][]byte, error)
	// Gather shares this process's encoded partials of round and returns
	// every shard's, in index order.
	Gather(ctx context.Context, round string, mine map[int][]byte) ([][]byte, error)
}

// Codec turns a partial into bytes and back. Encode must give the same
// bytes for the same value.
type Codec[P any] struct {
	Encode func(P) []byte
	Decode func([]byte) (P, error)
}

// Reduce computes the partials of the shards of x this process owns with
// part (one worker each), shares them as round and returns every shard's
// partial combined by shard.TreeSum in index order. A shard with nothing
// to compute returns the zero P, shared as no bytes and merged as such:
// merge must take a zero P on either side.
//
// One shard in this process is its own result: its partial is returned
// as part computed it, not encoded and decoded again (a copy of every
// statistic, such as a 3073² Hessian of 75 MB, for nothing to meet).
func Reduce[P any](ctx context.Context, x Exchange, round string, c Codec[P], part func(s int) (P, error), merge func(a, b P) P) (P, error) {
	var zero P
	if l, ok := x.(Local); ok && l.Shards() == 1 {
		return part(0)
	}
	mine := x.Mine()
	enc, err := x.Shared(ctx, round)
	if err != nil {
		return zero, &Error{Round: round, Err: err}
	}
	if enc == nil {
		enc = map[int][]byte{}
	}
	var todo []int
	for _, s := range mine {
		if _, ok := enc[s]; !ok {
			todo = append(todo, s)
		}
	}
	err = feed.Parallel(ctx, len(todo), len(todo), func(i int) ([]byte, error) {
		p, err := part(todo[i])
		if err != nil || isZero(p) {
			return nil, err
		}
		return c.Encode(p), nil
	}, func(i int, b []byte) error {
		enc[todo[i]] = b
		return nil
	})
	if err != nil {
		return zero, err
	}
	all, err := x.Gather(ctx, round, enc)
	if err != nil {
		return zero, &Error{Round: round, Err: err}
	}
	return shard.TreeSum(len(all), func(s int) (P, error) {
		if len(all[s]) == 0 {
			return zero, nil
		}
		p, err := c.Decode(all[s])
		if err != nil {
			return zero, &Error{Round: round, Err: fmt.Errorf("round %s: the partial of shard %d of %d: %w", round, s, len(all), err)}
		}
		return p, nil
	}, merge)
}

// Error is a failure of the exchange itself (a peer that never came, a
// partial that cannot be read or decoded), not of the computation: a
// caller that judges the model by a failed data pass must not blame the
// model for it.
type Error struct {
	Round string
	Err   error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// isZero reports a nil partial (maps and slices cannot be compared with
// ==).
func isZero[P any](p P) bool { return reflect.ValueOf(&p).Elem().IsZero() }

// Local runs every shard in this process: the partials are handed over
// in memory (through their encoding all the same).
type Local int

// Shards is the shard count.
func (l Local) Shards() int { return max(int(l), 1) }

// Mine is every shard.
func (l Local) Mine() []int {
	out := make([]int, l.Shards())
	for i := range out {
		out[i] = i
	}
	return out
}

// Shared is nothing: a process that starts again starts from scratch.
func (Local) Shared(context.Context, string) (map[int][]byte, error) { return nil, nil }

// Gather returns mine in index order.
func (l Local) Gather(_ context.Context, _ string, mine map[int][]byte) ([][]byte, error) {
	out := make([][]byte, l.Shards())
	for s := range out {
		out[s] = mine[s]
	}
	return out, nil
}
