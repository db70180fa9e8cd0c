package onnx

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Raw data copied into a typed slice reads the same values as decoding
// it element by element; raw data of the wrong length is left to
// DecodeRaw's error.
func TestDecodeNative(t *testing.T) {
	if !nativeLE {
		t.Skip("big-endian machine: raw data is always decoded")
	}
	f := []float32{1.5, -2, float32(math.Inf(1)), 3e-38}
	raw := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
	}
	got, ok := decodeNative(Float, raw, len(f))
	if !ok || !cmp.Equal(got, f) {
		t.Errorf("decodeNative(float) = %v, %v; want %v", got, ok, f)
	}
	i64 := []int64{-1, 1 << 40}
	raw64 := binary.LittleEndian.AppendUint64(binary.LittleEndian.AppendUint64(nil, uint64(i64[0])), uint64(i64[1]))
	if got, ok := decodeNative(Int64, raw64, 2); !ok || !cmp.Equal(got, i64) {
		t.Errorf("decodeNative(int64) = %v, %v; want %v", got, ok, i64)
	}
	for _, tc := range []struct {
		dt  DataType
		raw []byte
		n   int
	}{
		{Float, raw[:15], 4}, // not whole elements
		{Float, raw, 5},      // fewer bytes than elements
		{Float, raw, -1},
		{Float16, raw, 8}, // not a type read as it is
	} {
		if got, ok := decodeNative(tc.dt, tc.raw, tc.n); ok {
			t.Errorf("decodeNative(%v, %d bytes, %d) = %v: want it left to DecodeRaw", tc.dt, len(tc.raw), tc.n, got)
		}
	}
	if _, err := DecodeRaw(Float, raw, 5); err == nil {
		t.Error("DecodeRaw of 16 bytes as 5 floats: no error")
	}
}
