package quantize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func rawFloats(w []float32) []byte {
	b := make([]byte, 0, 4*len(w))
	for _, x := range w {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// Quantizing a weight as its rows are read gives exactly what quantizing
// it whole gives, a short last block included; NaN and Inf are found;
// a read that fails is the error.
func TestMatMulNBitsRows(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, kn := range [][2]int{{64, 20}, {100, 33}, {256, 300}, {16, 1}, {50, 129}} {
		for _, bits := range []int{4, 8} {
			for _, sym := range []bool{false, true} {
				w := make([]float32, kn[0]*kn[1])
				for i := range w {
					w[i] = float32(r.NormFloat64())
				}
				want, err := MatMulNBitsWeight(w, kn[0], kn[1], false, bits, 16, sym)
				if err != nil {
					t.Fatal(err)
				}
				got, err := MatMulNBitsRows(bytes.NewReader(rawFloats(w)), kn[0], kn[1], bits, 16, sym)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%v bits %d symmetric %v (-whole +rows):\n%s", kn, bits, sym, diff)
				}
			}
		}
	}
	w := make([]float32, 64*8)
	w[300] = float32(math.Inf(-1))
	if _, err := MatMulNBitsRows(bytes.NewReader(rawFloats(w)), 64, 8, 4, 16, true); err != errNotFinite {
		t.Errorf("an Inf: error %v, want errNotFinite", err)
	}
	short := rawFloats(w)[:1000]
	if _, err := MatMulNBitsRows(bytes.NewReader(short), 64, 8, 4, 16, true); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a short read: error %v, want io.ErrUnexpectedEOF", err)
	}
}
