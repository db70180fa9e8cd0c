package onnx

import "fmt"

// PackInt4 packs 4-bit values two to a byte, the first in the low nibble,
// as ONNX stores INT4/UINT4 (and FLOAT4E2M1) data. An odd count leaves the
// last high nibble zero. Values are taken modulo 16, so signed values in
// -8..7 pack as their two's-complement nibble.
func PackInt4[T int8 | uint8](vals []T) []byte {
	out := make([]byte, (len(vals)+1)/2)
	for i, v := range vals {
		n := byte(v) & 0x0f
		if i%2 == 0 {
			out[i/2] |= n
		} else {
			out[i/2] |= n << 4
		}
	}
	return out
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
