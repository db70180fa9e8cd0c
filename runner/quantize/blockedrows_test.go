package quantize

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Quantizing a weight blocked along its rows as its rows are read gives
// exactly what Blocked gives it read whole, short last blocks and reads
// of many rows included; NaN and Inf are found; a read that fails is the
// error.
func TestBlockedRows(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, rc := range [][2]int{{3, 64}, {100, 40}, {1, 16}, {700, 96}, {5, 70000}} {
		for _, qt := range []struct {
			t         QType
			symmetric bool
		}{{UInt4, false}, {Int4, true}, {UInt8, false}, {Int8, true}} {
			w := make([]float32, rc[0]*rc[1])
			for i := range w {
				w[i] = float32(r.NormFloat64())
			}
			want, err := Blocked(w, []int64{int64(rc[0]), int64(rc[1])}, 1, 32, qt.t, qt.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			got, err := BlockedRows(bytes.NewReader(rawFloats(w)), rc[0], rc[1], 32, qt.t, qt.symmetric)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%v %v (-whole +rows):\n%s", rc, qt.t, diff)
			}
		}
	}
	w := make([]float32, 64*8)
	w[300] = float32(math.NaN())
	if _, err := BlockedRows(bytes.NewReader(rawFloats(w)), 64, 8, 4, UInt4, false); err != errNotFinite {
		t.Errorf("a NaN: error %v, want errNotFinite", err)
	}
	short := rawFloats(w)[:1000]
	if _, err := BlockedRows(bytes.NewReader(short), 64, 8, 4, UInt4, false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a short read: error %v, want io.ErrUnexpectedEOF", err)
	}
	if _, err := BlockedRows(bytes.NewReader(nil), 0, 8, 4, UInt4, false); err == nil {
		t.Error("an empty weight: no error")
	}
}
