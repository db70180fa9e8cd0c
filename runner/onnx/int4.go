package onnx

import (
	"encoding/binary"
	"fmt"
	"unsafe"
)

// PackInt4 packs 4-bit values two to a byte, the first in the low nibble,
// as ONNX stores INT4/UINT4 (and FLOAT4E2M1) data. An odd count leaves the
// last high nibble zero. Values are taken modulo 16, so signed values in
// -8..7 pack as their two's-complement nibble.
func PackInt4[T int8 | uint8](vals []T) []byte {
	out := make([]byte, (len(vals)+1)/2)
	PackInt4Into(out, unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(vals))), len(vals)))
	return out
}

// PackInt4Into is PackInt4 of vals' bytes into out, (len(vals)+1)/2 bytes.
func PackInt4Into(out, vals []byte) {
	n := len(vals) / 2
	out = out[:(len(vals)+1)/2]
	i := 0
	// Eight values at a time in a uint64, where byte by byte takes a
	// load, a shift and a store per value.
	for ; 2*i+8 <= len(vals); i += 4 {
		x := binary.LittleEndian.Uint64(vals[2*i:]) & 0x0f0f0f0f0f0f0f0f
		x = (x | x>>4) & 0x00ff00ff00ff00ff // each pair in the low byte of its 16 bits
		x = (x | x>>8) & 0x0000ffff0000ffff
		x = (x | x>>16) & 0xffffffff
		binary.LittleEndian.PutUint32(out[i:], uint32(x))
	}
	for ; i < n; i++ {
		out[i] = vals[2*i]&0x0f | vals[2*i+1]<<4
	}
	if len(vals)%2 == 1 {
		out[n] = vals[2*n] & 0x0f
	}
}

// UnpackUint4 reads n unsigned 4-bit values from packed bytes.
func UnpackUint4(b []byte, n int) ([]uint8, error) {
	if n < 0 || n > 2*len(b) { // len(b) < (n+1)/2, without overflow
		return nil, fmt.Errorf("%d packed bytes hold fewer than %d 4-bit values", len(b), n)
	}
	out := make([]uint8, n)
	for i := range out {
		out[i] = nibble(b, i)
	}
	return out, nil
}

// UnpackInt4 reads n signed 4-bit values (-8..7) from packed bytes.
func UnpackInt4(b []byte, n int) ([]int8, error) {
	if n < 0 || n > 2*len(b) { // len(b) < (n+1)/2, without overflow
		return nil, fmt.Errorf("%d packed bytes hold fewer than %d 4-bit values", len(b), n)
	}
	out := make([]int8, n)
	for i := range out {
		out[i] = int8(nibble(b, i)<<4) >> 4 // sign-extend the nibble
	}
	return out, nil
}

func nibble(b []byte, i int) uint8 {
	if i%2 == 0 {
		return b[i/2] & 0x0f
	}
	return b[i/2] >> 4
}
