package exchange

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Writer encodes a partial: fixed-width little-endian numbers and
// length-prefixed strings, nothing else. The same values always give the
// same bytes (no maps, no type registry), which a content-addressed
// partial needs: a retried index must write what it wrote before.
type Writer struct{ b []byte }

// Bytes returns what was written.
func (w *Writer) Bytes() []byte { return w.b }

// Int writes an int64.
func (w *Writer) Int(v int64) { w.b = binary.LittleEndian.AppendUint64(w.b, uint64(v)) }

// Float64 writes a float64, bit for bit.
func (w *Writer) Float64(v float64) { w.Int(int64(math.Float64bits(v))) }

// Float32 writes a float32, bit for bit.
func (w *Writer) Float32(v float32) {
	w.b = binary.LittleEndian.AppendUint32(w.b, math.Float32bits(v))
}

// String writes a length-prefixed string.
func (w *Writer) String(s string) {
	w.Int(int64(len(s)))
	w.b = append(w.b, s...)
}

// Float64s writes a length-prefixed slice.
func (w *Writer) Float64s(v []float64) {
	w.Int(int64(len(v)))
	for _, x := range v {
		w.Float64(x)
	}
}

// Reader decodes what a Writer wrote. The first error sticks: a reader
// past the end returns zeros, and Err says what was wrong.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

var errShort = errors.New("partial ends early")

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = errShort
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

// Int reads an int64.
func (r *Reader) Int() int64 {
	p := r.take(8)
	if p == nil {
		return 0
	}
	return int64(binary.LittleEndian.Uint64(p))
}

// Float64 reads a float64.
func (r *Reader) Float64() float64 { return math.Float64frombits(uint64(r.Int())) }

// Float32 reads a float32.
func (r *Reader) Float32() float32 {
	p := r.take(4)
	if p == nil {
		return 0
	}
	return math.Float32frombits(binary.LittleEndian.Uint32(p))
}

// Len reads a length of items of at least size bytes each, refusing one
// longer than what is left.
func (r *Reader) Len(size int) int {
	n := r.Int()
	if r.err == nil && (n < 0 || n > int64(len(r.b)/max(size, 1))) {
		r.err = fmt.Errorf("a length of %d is more than the %d bytes left hold", n, len(r.b))
		return 0
	}
	return int(n)
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.take(r.Len(1))) }

// Float64s reads a length-prefixed slice.
func (r *Reader) Float64s() []float64 {
	v := make([]float64, r.Len(8))
	for i := range v {
		v[i] = r.Float64()
	}
	return v
}

// Err is the first error, or one when bytes are left over.
func (r *Reader) Err() error {
	if r.err == nil && len(r.b) > 0 {
		return fmt.Errorf("%d bytes left over after the partial", len(r.b))
	}
	return r.err
}
