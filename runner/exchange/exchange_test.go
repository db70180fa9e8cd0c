package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// sumCodec encodes a float64 partial.
var sumCodec = exchange.Codec[*float64]{
	Encode: func(p *float64) []byte {
		var w exchange.Writer
		w.Float64(*p)
		return w.Bytes()
	},
	Decode: func(b []byte) (*float64, error) {
		r := exchange.NewReader(b)
		v := r.Float64()
		return &v, r.Err()
	},
}

func add(a, b *float64) *float64 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	v := *a + *b
	return &v
}

// values whose sum depends on the order it is taken in.
var values = []float64{1e16, 1, -1e16, 3.5, 1e-3, 7e15, -2, 0.25, 1e8, -7e15, 5, 1e-9, 12, -3, 2e16, 1}

// unitSum is shard s of n's subtree of values, one per unit.
func unitSum(s, n int) (*float64, error) {
	lo, hi := shard.OfUnits(s, n)
	return shard.TreeSum(hi-lo, func(k int) (*float64, error) { v := values[lo+k]; return &v, nil }, add)
}

func server(t *testing.T) (*storagetest.S3, string) {
	s3 := storagetest.StartS3(t, "parts")
	return s3, s3.URI("parts", "out/key/shards")
}

func pods(prefix string, n int, wait time.Duration) []*exchange.Storage {
	out := make([]*exchange.Storage, n)
	for i := range out {
		out[i] = &exchange.Storage{Client: storage.Default, Prefix: prefix, Index: i, Of: n, Wait: wait, Poll: 10 * time.Millisecond}
	}
	return out
}

// Every index of every count ends a round with the sum one process
// computes, bit for bit, and in the same order.
func TestStorageReduceMatchesOneProcess(t *testing.T) {
	_, prefix := server(t)
	want, err := exchange.Reduce(context.Background(), exchange.Local(1), "r", sumCodec, func(s int) (*float64, error) { return unitSum(s, 1) }, add)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 2, 4, 16} {
		got := make([]float64, n)
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i, x := range pods(prefix, n, time.Minute) {
			wg.Go(func() {
				p, err := exchange.Reduce(context.Background(), x, fmt.Sprintf("count-%d", n), sumCodec, func(s int) (*float64, error) { return unitSum(s, n) }, add)
				errs[i] = err
				if p != nil {
					got[i] = *p
				}
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%d indices: %v", n, err)
		}
		for i, g := range got {
			if g != *want {
				t.Errorf("%d indices: index %d has %v, one process %v", n, i, g, *want)
			}
		}
		local, _ := exchange.Reduce(context.Background(), exchange.Local(n), "r", sumCodec, func(s int) (*float64, error) { return unitSum(s, n) }, add)
		if *local != *want {
			t.Errorf("%d local shards: %v, one shard %v", n, *local, *want)
		}
	}
}

// One local shard's partial is the result as its part computed it: not
// encoded and decoded (a copy of it); several local shards go through
// the encoding the pods exchange, once per shard.
func TestLocalReduceEncodesOnlyToMeet(t *testing.T) {
	for _, tc := range []struct {
		shards        int
		wantEncodes   int
		wantSamePoint bool
	}{
		{shards: 1, wantEncodes: 0, wantSamePoint: true},
		{shards: 2, wantEncodes: 2},
		{shards: 16, wantEncodes: 16},
	} {
		var mu sync.Mutex
		encodes := 0
		counting := exchange.Codec[*float64]{
			Encode: func(p *float64) []byte {
				mu.Lock()
				encodes++
				mu.Unlock()
				return sumCodec.Encode(p)
			},
			Decode: sumCodec.Decode,
		}
		var first *float64
		got, err := exchange.Reduce(context.Background(), exchange.Local(tc.shards), "r", counting, func(s int) (*float64, error) {
			p, err := unitSum(s, tc.shards)
			if s == 0 {
				first = p
			}
			return p, err
		}, add)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := unitSum(0, 1)
		if diff := cmp.Diff(*want, *got); diff != "" {
			t.Errorf("%d shards: sum (-one unit tree +got):\n%s", tc.shards, diff)
		}
		if encodes != tc.wantEncodes || (got == first) != tc.wantSamePoint {
			t.Errorf("%d shards: %d partials encoded, result is the part's own: %v; want %d, %v", tc.shards, encodes, got == first, tc.wantEncodes, tc.wantSamePoint)
		}
	}
}

// An index that never comes fails the others' round at the deadline,
// naming it.
func TestStorageMissingIndexTimesOut(t *testing.T) {
	_, prefix := server(t)
	// The deadline counts from the start of Gather, so it must leave room
	// for the present indices' own writes on a loaded machine.
	x := pods(prefix, 4, 3*time.Second)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for _, i := range []int{0, 2} {
		wg.Go(func() {
			_, errs[i] = x[i].Gather(context.Background(), "wave-0", map[int][]byte{i: {byte(i)}})
		})
	}
	wg.Wait()
	for _, i := range []int{0, 2} {
		want := "round wave-0: index 1, 3 of 4 did not share its partial statistics within 3s"
		if errs[i] == nil || !strings.Contains(errs[i].Error(), want) {
			t.Errorf("index %d: err = %v, want it to say %q", i, errs[i], want)
		}
	}
}

// Partials are write-once: a retried index that computed the same bytes
// is accepted (and Shared hands them back without recomputing), one that
// computed other bytes is refused.
func TestStoragePartialsAreWriteOnce(t *testing.T) {
	_, prefix := server(t)
	ctx := context.Background()
	x := pods(prefix, 2, time.Second)
	other := func() { _, _ = x[1].Gather(ctx, "r", map[int][]byte{1: []byte("one")}) }
	go other()
	if _, err := x[0].Gather(ctx, "r", map[int][]byte{0: []byte("zero")}); err != nil {
		t.Fatal(err)
	}
	retry := pods(prefix, 2, time.Second)[0]
	shared, err := retry.Shared(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[int][]byte{0: []byte("zero")}, shared); diff != "" {
		t.Errorf("Shared after the first attempt (-want +got):\n%s", diff)
	}
	all, err := retry.Gather(ctx, "r", map[int][]byte{0: []byte("zero")})
	if err != nil {
		t.Fatalf("same bytes again: %v", err)
	}
	if diff := cmp.Diff([][]byte{[]byte("zero"), []byte("one")}, all); diff != "" {
		t.Errorf("Gather (-want +got):\n%s", diff)
	}
	_, err = retry.Gather(ctx, "r", map[int][]byte{0: []byte("ZERO")})
	if err == nil || !strings.Contains(err.Error(), "index 0's partial is already at") {
		t.Errorf("other bytes: err = %v, want a refusal", err)
	}
	if shared, _ := pods(prefix, 2, time.Second)[1].Shared(ctx, "absent"); shared != nil {
		t.Errorf("Shared of a round never run: %v", shared)
	}
}

// A partial whose bytes do not match its committed digest is refused.
func TestStorageRefusesCorruptPartial(t *testing.T) {
	_, prefix := server(t)
	ctx := context.Background()
	x := pods(prefix, 2, time.Second)
	go func() { _, _ = x[1].Gather(ctx, "r", map[int][]byte{1: []byte("one")}) }()
	if _, err := x[0].Gather(ctx, "r", map[int][]byte{0: []byte("zero")}); err != nil {
		t.Fatal(err)
	}
	// Index 1's bytes are replaced: they no longer match its committed
	// digest.
	part := x[1].PartURI("r", 1)
	if err := storage.Delete(ctx, part); err != nil {
		t.Fatal(err)
	}
	if _, err := storage.WriteBytes(ctx, part, []byte("eno")); err != nil {
		t.Fatal(err)
	}
	_, err := pods(prefix, 2, time.Second)[0].Gather(ctx, "r", map[int][]byte{0: []byte("zero")})
	if err == nil || !errors.Is(err, storage.ErrDigestMismatch) || !strings.Contains(err.Error(), "index 1's partial") {
		t.Errorf("err = %v, want a digest mismatch naming index 1", err)
	}
}

// An index waiting for others stops with ErrDone once the stage's result
// exists, and Delete removes the partials of the rounds it gathered.
func TestStorageDoneAndDelete(t *testing.T) {
	s3, prefix := server(t)
	ctx := context.Background()
	result := s3.URI("parts", "out/key/result.json")
	x := pods(prefix, 2, time.Minute)
	x[1].Done = result
	errc := make(chan error, 1)
	go func() {
		_, err := x[1].Gather(ctx, "r", map[int][]byte{1: []byte("one")})
		errc <- err
	}()
	if _, err := storage.WriteBytes(ctx, result, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, exchange.ErrDone) {
		t.Errorf("err = %v, want ErrDone", err)
	}
	if err := x[1].Delete(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := s3.Keys("parts")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"out/key/result.json"}, keys); diff != "" {
		t.Errorf("objects after Delete (-want +got):\n%s", diff)
	}
}

// A partial that ends early or has bytes left over is refused.
func TestReaderRefusesMalformedPartials(t *testing.T) {
	var w exchange.Writer
	w.String("conv")
	w.Float64s([]float64{1, 2})
	good := w.Bytes()
	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"whole", good, ""},
		{"short", good[:4], "partial ends early"},
		{"short slice", good[:len(good)-3], "a length of 2 is more than the 13 bytes left hold"},
		{"long", append(append([]byte(nil), good...), 9), "1 bytes left over"},
		{"huge length", append(good[:0:0], 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0), "more than the 0 bytes left hold"},
	}
	for _, tt := range tests {
		r := exchange.NewReader(tt.b)
		_ = r.String()
		_ = r.Float64s()
		got := ""
		if err := r.Err(); err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("%s: err %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A partial whose digest is committed but whose bytes are gone (the
// publishing index deleted the round between the two reads) counts as
// not there yet, not as an error: the waiting index then finds the result.
func TestStoragePartialDeletedWhileRead(t *testing.T) {
	s3, prefix := server(t)
	ctx := context.Background()
	x := pods(prefix, 2, time.Minute)
	result := s3.URI("parts", "out/key/result.json")
	x[0].Done = result
	if _, err := storage.WriteBytes(ctx, result, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// Index 1's digest is committed, its bytes are not there.
	if _, err := storage.WriteBytes(ctx, s3.URI("parts", "out/key/shards/r/1-of-2.sha256"), []byte(storage.Digest([]byte("one")))); err != nil {
		t.Fatal(err)
	}
	if _, err := x[0].Gather(ctx, "r", map[int][]byte{0: []byte("zero")}); !errors.Is(err, exchange.ErrDone) {
		t.Errorf("err = %v, want ErrDone", err)
	}
}
