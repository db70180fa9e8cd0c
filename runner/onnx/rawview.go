package onnx

import (
	"encoding/binary"
	"io"
	"math"
	"unsafe"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// nativeLE says the machine stores numbers as ONNX's raw_data does
// (little-endian): raw bytes can then be copied into a typed slice as
// they are, instead of decoded one element at a time.
var nativeLE = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// allocRaw makes the tensor tp describes, with its data zeroed, and the
// bytes of that data, when its raw layout is the machine's and length is
// exactly its size: reading length bytes into buf fills the tensor.
func allocRaw(tp *onnxpb.TensorProto, length int64) (*Tensor, []byte, bool) {
	dt := DataType(tp.GetDataType())
	size, ok := nativeSize[dt]
	n, err := CountElements(tp.GetDims())
	if err != nil || !nativeLE || !ok || length%int64(size) != 0 || length/int64(size) != int64(n) {
		return nil, nil, false
	}
	data := makeNative(dt, n)
	return &Tensor{DType: dt, Dims: append([]int64{}, tp.GetDims()...), Data: data}, bytesOf(data), true
}

func makeNative(dt DataType, n int) any {
	switch dt {
	case Float:
		return make([]float32, n)
	case Double:
		return make([]float64, n)
	case Int32:
		return make([]int32, n)
	default:
		return make([]int64, n)
	}
}

// bytesOf is the memory of a slice of fixed-size numbers, as bytes.
func bytesOf(data any) []byte {
	switch d := data.(type) {
	case []float32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 4*len(d))
	case []float64:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 8*len(d))
	case []int32:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 4*len(d))
	case []int64:
		return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 8*len(d))
	}
	return nil
}

// nativeSize is the size of an element of the types read as they are.
var nativeSize = map[DataType]int{Float: 4, Double: 8, Int32: 4, Int64: 8}

// decodeNative decodes raw into a fresh slice by copying when the
// machine's layout is raw_data's; ok is false otherwise (and when raw is
// not n elements, for DecodeRaw to say so).
func decodeNative(dt DataType, raw []byte, n int) (any, bool) {
	size, ok := nativeSize[dt]
	if !nativeLE || !ok || n < 0 || len(raw)%size != 0 || len(raw)/size != n {
		return nil, false
	}
	data := makeNative(dt, n)
	copy(bytesOf(data), raw)
	return data, true
}

// ReadFloat32s fills dst with little-endian float32 values read from r
// (raw_data's layout), straight into dst's memory on a little-endian
// machine.
func ReadFloat32s(r io.Reader, dst []float32) error {
	if nativeLE {
		_, err := io.ReadFull(r, bytesOf(dst))
		return err
	}
	buf := make([]byte, 4*len(dst))
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:]))
	}
	return nil
}
