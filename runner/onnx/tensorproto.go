package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"

	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// TensorFromProto decodes a TensorProto's data, from raw_data or from the
// typed field its data type uses. External data must have been read into
// raw_data first (LoadFile does that); segmented tensors are not supported.
// Dims and the amount of data are checked against each other before
// anything is allocated (see MaxElements); every error wraps ErrInvalid.
func TensorFromProto(tp *onnxpb.TensorProto) (*Tensor, error) {
	if tp == nil {
		return nil, invalidf("tensor is missing")
	}
	dt := DataType(tp.GetDataType())
	n, err := checkLayout(tp)
	if err != nil {
		return nil, err
	}
	if err := checkData(dt, tp, n); err != nil {
		return nil, invalidf("tensor %q %s: %w", tp.GetName(), describe(tp, err), err)
	}
	var data any
	if tp.RawData != nil && dt != String {
		data, err = DecodeRaw(dt, tp.RawData, n)
	} else {
		data, err = decodeTyped(dt, tp, n)
	}
	if err != nil {
		return nil, invalidf("tensor %q %s: %w", tp.GetName(), describe(tp, err), err)
	}
	return &Tensor{DType: dt, Dims: append([]int64{}, tp.GetDims()...), Data: data}, nil
}

// checkLayout checks what TensorFromProto needs before it looks at the
// data: valid dims, data inline and whole. It returns the element count.
func checkLayout(tp *onnxpb.TensorProto) (int, error) {
	n, err := CountElements(tp.GetDims())
	if err != nil {
		return 0, invalidf("tensor %q: %w", tp.GetName(), err)
	}
	if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		return 0, invalidf("tensor %q keeps its data in external file %q: load the model with LoadFile so the file is read", tp.GetName(), externalKey(tp, "location"))
	}
	if tp.Segment != nil {
		return 0, invalidf("tensor %q is a segment of a larger tensor: segments are not supported", tp.GetName())
	}
	return n, nil
}

// describe is a tensor's type and dims for a message about err:
// "(FLOAT, dims [2 3])", or "(FLOAT)" when err names the dims.
func describe(tp *onnxpb.TensorProto, err error) string {
	return typeAndDims(DataType(tp.GetDataType()), tp.GetDims(), err)
}

// checkData checks that tp holds the data of n elements of type dt in the
// field TensorFromProto reads (raw_data, else the typed field dt uses),
// without decoding or allocating anything. n must come from CountElements.
func checkData(dt DataType, tp *onnxpb.TensorProto, n int) error {
	if tp.RawData != nil && dt != String {
		raw := len(tp.RawData)
		switch bits := ElemBits(dt); {
		case bits == 0:
			return fmt.Errorf("unsupported data type %v", dt)
		case bits == 4:
			if raw != (n+1)/2 {
				return fmt.Errorf("raw_data has %d bytes, expected %d (%d packed 4-bit elements)", raw, (n+1)/2, n)
			}
		default:
			if size := bits / 8; raw != n*size {
				return fmt.Errorf("raw_data has %d bytes, expected %d (%d elements of %d bytes)", raw, n*size, n, size)
			}
		}
		return nil
	}
	field, have, want := typedField(dt, tp, n)
	if field == "" {
		return fmt.Errorf("unsupported data type %v", dt)
	}
	if have != want {
		return fmt.Errorf("%s has %d values, expected %d", field, have, want)
	}
	return nil
}

// typedField is the typed field that holds the data of n elements of type
// dt when raw_data is absent, with how many values it has and must have;
// field is "" for a type with no typed field.
func typedField(dt DataType, tp *onnxpb.TensorProto, n int) (field string, have, want int) {
	switch dt {
	case Float:
		return "float_data", len(tp.GetFloatData()), n
	case Double:
		return "double_data", len(tp.GetDoubleData()), n
	case Int64:
		return "int64_data", len(tp.GetInt64Data()), n
	case String:
		return "string_data", len(tp.GetStringData()), n
	case Uint64, Uint32:
		return "uint64_data", len(tp.GetUint64Data()), n
	case Complex64:
		return "float_data", len(tp.GetFloatData()), 2 * n
	case Complex128:
		return "double_data", len(tp.GetDoubleData()), 2 * n
	case Int4, Uint4, Float4E2M1:
		return "int32_data", len(tp.GetInt32Data()), (n + 1) / 2 // packed bytes, one per entry
	case Int32, Int8, Uint8, Int16, Uint16, Float16, BFloat16, Bool,
		Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return "int32_data", len(tp.GetInt32Data()), n
	}
	return "", 0, 0
}

// TensorToProto encodes t as a TensorProto named name, data in raw_data
// (string_data for STRING), the layout ONNX Runtime reads fastest.
func TensorToProto(t *Tensor, name string) (*onnxpb.TensorProto, error) {
	tp, err := protoHeader(t, name)
	if err != nil {
		return nil, err
	}
	if s, ok := t.Data.([]string); ok {
		for _, v := range s {
			tp.StringData = append(tp.StringData, []byte(v))
		}
		return tp, nil
	}
	raw, err := EncodeRaw(t)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	tp.RawData = raw
	return tp, nil
}

// TensorToProtoShared is TensorToProto with t's memory as raw_data, not
// a copy, where it already is raw_data's layout (bytes of an 8-bit type;
// float32 on a little-endian machine): for a large tensor made to be
// stored, whose data the caller does not change after. A quantized
// weight written this way costs neither a second copy of its bytes in
// memory nor the time to make it.
func TensorToProtoShared(t *Tensor, name string) (*onnxpb.TensorProto, error) {
	var raw []byte
	switch d := t.Data.(type) {
	case []uint8:
		if ElemBits(t.DType) == 8 {
			raw = d
		}
	case []float32:
		if nativeLE {
			raw = bytesOf(d)
		}
	}
	if raw == nil {
		return TensorToProto(t, name)
	}
	tp, err := protoHeader(t, name)
	if err != nil {
		return nil, err
	}
	tp.RawData = raw
	return tp, nil
}

// protoHeader is a TensorProto of t's name, type and dims, no data yet.
func protoHeader(t *Tensor, name string) (*onnxpb.TensorProto, error) {
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return &onnxpb.TensorProto{
		Name:     proto.String(name),
		DataType: proto.Int32(int32(t.DType)),
		Dims:     append([]int64{}, t.Dims...),
	}, nil
}

// SetProtoData replaces tp's data, type and dims with t's, clearing every
// other data field (typed fields, external data), keeping name, doc string
// and metadata.
func SetProtoData(tp *onnxpb.TensorProto, t *Tensor) error {
	fresh, err := TensorToProto(t, tp.GetName())
	if err != nil {
		return err
	}
	tp.Dims, tp.DataType, tp.RawData, tp.StringData = fresh.Dims, fresh.DataType, fresh.RawData, fresh.StringData
	tp.FloatData, tp.Int32Data, tp.Int64Data, tp.DoubleData, tp.Uint64Data = nil, nil, nil, nil, nil
	tp.ExternalData, tp.DataLocation, tp.Segment = nil, nil, nil
	if tp.RawData == nil && t.DType != String {
		tp.RawData = []byte{} // present but empty: a zero-element tensor
	}
	return nil
}

// ReadTensorFile reads a serialized TensorProto, such as the input_0.pb and
// output_0.pb files of ONNX test data sets.
func ReadTensorFile(path string) (*Tensor, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tp onnxpb.TensorProto
	if err := proto.Unmarshal(b, &tp); err != nil {
		return nil, fmt.Errorf("%s: not a TensorProto: %w", path, err)
	}
	t, err := TensorFromProto(&tp)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// EncodeRaw encodes t's data as ONNX raw_data: little-endian fixed-width
// elements, BOOL one byte each, 4-bit types packed low nibble first.
func EncodeRaw(t *Tensor) ([]byte, error) {
	switch d := t.Data.(type) {
	case []float32:
		return putLE(d, 4, func(b []byte, v float32) { binary.LittleEndian.PutUint32(b, math.Float32bits(v)) }), nil
	case []float64:
		return putLE(d, 8, func(b []byte, v float64) { binary.LittleEndian.PutUint64(b, math.Float64bits(v)) }), nil
	case []float16.Float16:
		return putLE(d, 2, func(b []byte, v float16.Float16) { binary.LittleEndian.PutUint16(b, uint16(v)) }), nil
	case []BF16:
		return putLE(d, 2, func(b []byte, v BF16) { binary.LittleEndian.PutUint16(b, uint16(v)) }), nil
	case []int8:
		if t.DType == Int4 {
			return PackInt4(d), nil
		}
		return putLE(d, 1, func(b []byte, v int8) { b[0] = byte(v) }), nil
	case []uint8:
		if ElemBits(t.DType) == 4 {
			return PackInt4(d), nil
		}
		return append([]byte{}, d...), nil
	case []int16:
		return putLE(d, 2, func(b []byte, v int16) { binary.LittleEndian.PutUint16(b, uint16(v)) }), nil
	case []uint16:
		return putLE(d, 2, func(b []byte, v uint16) { binary.LittleEndian.PutUint16(b, v) }), nil
	case []int32:
		return putLE(d, 4, func(b []byte, v int32) { binary.LittleEndian.PutUint32(b, uint32(v)) }), nil
	case []uint32:
		return putLE(d, 4, func(b []byte, v uint32) { binary.LittleEndian.PutUint32(b, v) }), nil
	case []int64:
		return putLE(d, 8, func(b []byte, v int64) { binary.LittleEndian.PutUint64(b, uint64(v)) }), nil
	case []uint64:
		return putLE(d, 8, func(b []byte, v uint64) { binary.LittleEndian.PutUint64(b, v) }), nil
	case []bool:
		return putLE(d, 1, func(b []byte, v bool) {
			if v {
				b[0] = 1
			}
		}), nil
	case []complex64:
		return putLE(d, 8, func(b []byte, v complex64) {
			binary.LittleEndian.PutUint32(b, math.Float32bits(real(v)))
			binary.LittleEndian.PutUint32(b[4:], math.Float32bits(imag(v)))
		}), nil
	case []complex128:
		return putLE(d, 16, func(b []byte, v complex128) {
			binary.LittleEndian.PutUint64(b, math.Float64bits(real(v)))
			binary.LittleEndian.PutUint64(b[8:], math.Float64bits(imag(v)))
		}), nil
	}
	return nil, fmt.Errorf("cannot encode %T as raw data", t.Data)
}

func putLE[T any](vals []T, size int, put func([]byte, T)) []byte {
	out := make([]byte, len(vals)*size)
	for i, v := range vals {
		put(out[i*size:], v)
	}
	return out
}

func getLE[T any](raw []byte, n, size int, get func([]byte) T) ([]T, error) {
	if n < 0 || n > len(raw) || len(raw) != n*size { // n <= len(raw): n*size cannot overflow
		if n < 0 || n > MaxElements {
			return nil, fmt.Errorf("raw_data has %d bytes, expected %d elements of %d bytes", len(raw), n, size)
		}
		return nil, fmt.Errorf("raw_data has %d bytes, expected %d (%d elements of %d bytes)", len(raw), n*size, n, size)
	}
	out := make([]T, n)
	for i := range out {
		out[i] = get(raw[i*size:])
	}
	return out, nil
}

// DecodeRaw decodes n elements of type dt from ONNX raw_data layout into
// the Go slice Tensor uses for dt.
func DecodeRaw(dt DataType, raw []byte, n int) (any, error) {
	if data, ok := decodeNative(dt, raw, n); ok {
		return data, nil
	}
	le := binary.LittleEndian
	switch dt {
	case Float:
		return getLE(raw, n, 4, func(b []byte) float32 { return math.Float32frombits(le.Uint32(b)) })
	case Double:
		return getLE(raw, n, 8, func(b []byte) float64 { return math.Float64frombits(le.Uint64(b)) })
	case Float16:
		return getLE(raw, n, 2, func(b []byte) float16.Float16 { return float16.Float16(le.Uint16(b)) })
	case BFloat16:
		return getLE(raw, n, 2, func(b []byte) BF16 { return BF16(le.Uint16(b)) })
	case Int8:
		return getLE(raw, n, 1, func(b []byte) int8 { return int8(b[0]) })
	case Uint8, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return getLE(raw, n, 1, func(b []byte) uint8 { return b[0] })
	case Int16:
		return getLE(raw, n, 2, func(b []byte) int16 { return int16(le.Uint16(b)) })
	case Uint16:
		return getLE(raw, n, 2, func(b []byte) uint16 { return le.Uint16(b) })
	case Int32:
		return getLE(raw, n, 4, func(b []byte) int32 { return int32(le.Uint32(b)) })
	case Uint32:
		return getLE(raw, n, 4, func(b []byte) uint32 { return le.Uint32(b) })
	case Int64:
		return getLE(raw, n, 8, func(b []byte) int64 { return int64(le.Uint64(b)) })
	case Uint64:
		return getLE(raw, n, 8, func(b []byte) uint64 { return le.Uint64(b) })
	case Bool:
		return getLE(raw, n, 1, func(b []byte) bool { return b[0] != 0 })
	case Complex64:
		return getLE(raw, n, 8, func(b []byte) complex64 {
			return complex(math.Float32frombits(le.Uint32(b)), math.Float32frombits(le.Uint32(b[4:])))
		})
	case Complex128:
		return getLE(raw, n, 16, func(b []byte) complex128 {
			return complex(math.Float64frombits(le.Uint64(b)), math.Float64frombits(le.Uint64(b[8:])))
		})
	case Int4, Uint4, Float4E2M1:
		if n < 0 || n > 2*len(raw) || len(raw) != (n+1)/2 {
			return nil, fmt.Errorf("raw_data has %d bytes, expected %d (%d packed 4-bit elements)", len(raw), (n+1)/2, n)
		}
		if dt == Int4 {
			return UnpackInt4(raw, n)
		}
		return UnpackUint4(raw, n)
	}
	return nil, fmt.Errorf("unsupported data type %v", dt)
}

func decodeTyped(dt DataType, tp *onnxpb.TensorProto, n int) (any, error) {
	ints := tp.GetInt32Data()
	switch dt {
	case Float:
		return exact(tp.GetFloatData(), n, "float_data")
	case Double:
		return exact(tp.GetDoubleData(), n, "double_data")
	case Int64:
		return exact(tp.GetInt64Data(), n, "int64_data")
	case Int32:
		return exact(ints, n, "int32_data")
	case String:
		s, err := exact(tp.GetStringData(), n, "string_data")
		if err != nil {
			return nil, err
		}
		return convert(s, func(b []byte) string { return string(b) }), nil
	case Uint64:
		return exact(tp.GetUint64Data(), n, "uint64_data")
	case Uint32:
		u, err := exact(tp.GetUint64Data(), n, "uint64_data")
		if err != nil {
			return nil, err
		}
		return convert(u, func(v uint64) uint32 { return uint32(v) }), nil
	case Complex64:
		f, err := exact(tp.GetFloatData(), 2*n, "float_data")
		if err != nil {
			return nil, err // before make: n is not backed by data
		}
		out := make([]complex64, n)
		for i := range out {
			out[i] = complex(f[2*i], f[2*i+1])
		}
		return out, nil
	case Complex128:
		f, err := exact(tp.GetDoubleData(), 2*n, "double_data")
		if err != nil {
			return nil, err
		}
		out := make([]complex128, n)
		for i := range out {
			out[i] = complex(f[2*i], f[2*i+1])
		}
		return out, nil
	case Int4, Uint4, Float4E2M1:
		// Packed bytes, one byte per int32 entry.
		packed, err := exact(ints, (n+1)/2, "int32_data")
		if err != nil {
			return nil, err
		}
		return DecodeRaw(dt, convert(packed, func(v int32) byte { return byte(v) }), n)
	}
	// The remaining types keep one element (or its bit pattern) per int32.
	if _, err := exact(ints, n, "int32_data"); err != nil {
		return nil, err
	}
	switch dt {
	case Int8:
		return convert(ints, func(v int32) int8 { return int8(v) }), nil
	case Uint8, Float8E4M3FN, Float8E4M3FNUZ, Float8E5M2, Float8E5M2FNUZ, Float8E8M0:
		return convert(ints, func(v int32) uint8 { return uint8(v) }), nil
	case Int16:
		return convert(ints, func(v int32) int16 { return int16(v) }), nil
	case Uint16:
		return convert(ints, func(v int32) uint16 { return uint16(v) }), nil
	case Float16:
		return convert(ints, func(v int32) float16.Float16 { return float16.Float16(v) }), nil
	case BFloat16:
		return convert(ints, func(v int32) BF16 { return BF16(v) }), nil
	case Bool:
		return convert(ints, func(v int32) bool { return v != 0 }), nil
	}
	return nil, fmt.Errorf("unsupported data type %v", dt)
}

func exact[T any](vals []T, n int, field string) ([]T, error) {
	if len(vals) != n {
		return nil, fmt.Errorf("%s has %d values, expected %d", field, len(vals), n)
	}
	return append([]T{}, vals...), nil
}

// externalKey returns the value of key in tp.external_data.
func externalKey(tp *onnxpb.TensorProto, key string) string {
	for _, e := range tp.GetExternalData() {
		if e.GetKey() == key {
			return e.GetValue()
		}
	}
	return ""
}
