package onnx_test

import (
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/x448/float16"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

func dt(t onnx.DataType) *int32 { return proto.Int32(int32(t)) }

// TestTensorFromTypedFields decodes the typed-field layouts ONNX allows
// besides raw_data.
func TestTensorFromTypedFields(t *testing.T) {
	tests := []struct {
		name string
		tp   *onnxpb.TensorProto
		want *onnx.Tensor
	}{
		{"float_data", &onnxpb.TensorProto{DataType: dt(onnx.Float), Dims: []int64{2}, FloatData: []float32{1.5, -2}},
			onnx.NewTensor([]int64{2}, []float32{1.5, -2})},
		{"double_data", &onnxpb.TensorProto{DataType: dt(onnx.Double), Dims: []int64{1}, DoubleData: []float64{math.Pi}},
			onnx.NewTensor([]int64{1}, []float64{math.Pi})},
		{"int64_data scalar", &onnxpb.TensorProto{DataType: dt(onnx.Int64), Int64Data: []int64{-7}},
			onnx.NewTensor([]int64{}, []int64{-7})},
		{"int32_data int8", &onnxpb.TensorProto{DataType: dt(onnx.Int8), Dims: []int64{2}, Int32Data: []int32{-128, 127}},
			onnx.NewTensor([]int64{2}, []int8{-128, 127})},
		{"int32_data uint8", &onnxpb.TensorProto{DataType: dt(onnx.Uint8), Dims: []int64{2}, Int32Data: []int32{0, 255}},
			onnx.NewTensor([]int64{2}, []uint8{0, 255})},
		{"int32_data float16 bits", &onnxpb.TensorProto{DataType: dt(onnx.Float16), Dims: []int64{2}, Int32Data: []int32{0x3c00, 0xc000}},
			onnx.NewTensor([]int64{2}, []float16.Float16{float16.Fromfloat32(1), float16.Fromfloat32(-2)})},
		{"int32_data bool", &onnxpb.TensorProto{DataType: dt(onnx.Bool), Dims: []int64{2}, Int32Data: []int32{1, 0}},
			onnx.NewTensor([]int64{2}, []bool{true, false})},
		{"int32_data int4 packed", &onnxpb.TensorProto{DataType: dt(onnx.Int4), Dims: []int64{3}, Int32Data: []int32{0x8f, 0x07}},
			&onnx.Tensor{DType: onnx.Int4, Dims: []int64{3}, Data: []int8{-1, -8, 7}}},
		{"uint64_data uint32", &onnxpb.TensorProto{DataType: dt(onnx.Uint32), Dims: []int64{1}, Uint64Data: []uint64{4000000000}},
			onnx.NewTensor([]int64{1}, []uint32{4000000000})},
		{"string_data", &onnxpb.TensorProto{DataType: dt(onnx.String), Dims: []int64{2}, StringData: [][]byte{[]byte("a"), []byte("bc")}},
			onnx.NewTensor([]int64{2}, []string{"a", "bc"})},
		{"float_data complex64", &onnxpb.TensorProto{DataType: dt(onnx.Complex64), Dims: []int64{1}, FloatData: []float32{1, 2}},
			onnx.NewTensor([]int64{1}, []complex64{complex(1, 2)})},
		{"empty", &onnxpb.TensorProto{DataType: dt(onnx.Float), Dims: []int64{0, 3}},
			onnx.NewTensor([]int64{0, 3}, []float32{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := onnx.TensorFromProto(tc.tp)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TestRawRoundTrip encodes every element type to raw_data and back.
func TestRawRoundTrip(t *testing.T) {
	tests := []*onnx.Tensor{
		onnx.NewTensor([]int64{3}, []float32{1, float32(math.Inf(-1)), -0.25}),
		onnx.NewTensor([]int64{2}, []float64{1e300, -1}),
		onnx.NewTensor([]int64{2}, onnx.Float16s([]float32{0.1, 65504})),
		onnx.NewTensor([]int64{1}, []onnx.BF16{onnx.BF16FromFloat32(3.5)}),
		onnx.NewTensor([]int64{2}, []int8{-128, 5}),
		onnx.NewTensor([]int64{2}, []uint8{0, 255}),
		onnx.NewTensor([]int64{2}, []int16{-300, 300}),
		onnx.NewTensor([]int64{2}, []uint16{65535, 1}),
		onnx.NewTensor([]int64{2}, []int32{math.MinInt32, 9}),
		onnx.NewTensor([]int64{1}, []uint32{math.MaxUint32}),
		onnx.NewTensor([]int64{2, 1}, []int64{math.MinInt64, math.MaxInt64}),
		onnx.NewTensor([]int64{1}, []uint64{math.MaxUint64}),
		onnx.NewTensor([]int64{3}, []bool{true, false, true}),
		onnx.NewTensor([]int64{1}, []complex128{complex(1, -1)}),
		{DType: onnx.Int4, Dims: []int64{5}, Data: []int8{-8, -1, 0, 1, 7}},
		{DType: onnx.Uint4, Dims: []int64{2}, Data: []uint8{15, 3}},
		{DType: onnx.Float8E4M3FN, Dims: []int64{2}, Data: []uint8{0x38, 0xff}},
		onnx.NewTensor([]int64{2}, []string{"x", ""}),
	}
	for _, want := range tests {
		t.Run(want.DType.String(), func(t *testing.T) {
			tp, err := onnx.TensorToProto(want, "w")
			if err != nil {
				t.Fatal(err)
			}
			if want.DType != onnx.String && len(tp.RawData) != onnx.ByteSize(want.DType, want.Len()) {
				t.Errorf("raw_data is %d bytes, want %d", len(tp.RawData), onnx.ByteSize(want.DType, want.Len()))
			}
			got, err := onnx.TensorFromProto(tp)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// TensorToProtoShared writes what TensorToProto writes, and takes the
// tensor's memory as raw_data where that is its layout (bytes, float32)
// instead of copying it: a change to the data after shows in raw_data.
func TestTensorToProtoShared(t *testing.T) {
	u8 := []uint8{1, 2, 3, 250}
	f32 := []float32{1.5, -2, 0, 3e38}
	i32 := []int32{1, -2}
	u4 := []uint8{1, 15, 7}
	for _, tc := range []struct {
		name   string
		tensor *onnx.Tensor
		shared bool
	}{
		{"uint8", onnx.NewTensor([]int64{2, 2}, u8), true},
		{"float32", onnx.NewTensor([]int64{4}, f32), true},
		{"int32", onnx.NewTensor([]int64{2}, i32), false},
		{"uint4", &onnx.Tensor{DType: onnx.Uint4, Dims: []int64{3}, Data: u4}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := onnx.TensorToProto(tc.tensor, "w")
			if err != nil {
				t.Fatal(err)
			}
			got, err := onnx.TensorToProtoShared(tc.tensor, "w")
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
				t.Errorf("(-TensorToProto +TensorToProtoShared):\n%s", diff)
			}
			before := string(got.RawData)
			switch d := tc.tensor.Data.(type) {
			case []uint8:
				d[0]++
			case []float32:
				d[0]++
			case []int32:
				d[0]++
			}
			if shared := string(got.RawData) != before; shared != tc.shared {
				t.Errorf("raw_data shares the tensor's memory: %v, want %v", shared, tc.shared)
			}
		})
	}
	bad := &onnx.Tensor{DType: onnx.Uint8, Dims: []int64{3}, Data: []uint8{1}}
	if _, err := onnx.TensorToProtoShared(bad, "b"); err == nil || !strings.Contains(err.Error(), `tensor "b"`) {
		t.Errorf("1 value for dims [3]: error = %v, want one naming the tensor", err)
	}
}

func TestTensorErrors(t *testing.T) {
	tests := []struct {
		name string
		tp   *onnxpb.TensorProto
		want string
	}{
		{"short raw", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(onnx.Float), Dims: []int64{2}, RawData: make([]byte, 7)},
			`tensor "w" (FLOAT, dims [2]): raw_data has 7 bytes, expected 8`},
		{"short typed", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(onnx.Float), Dims: []int64{3}, FloatData: []float32{1}},
			`float_data has 1 values, expected 3`},
		{"negative dim", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(onnx.Float), Dims: []int64{-1}},
			`tensor "w": dim 0 is -1, expected >= 0`},
		{"external", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(onnx.Float), DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(),
			ExternalData: []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String("w.bin")}}},
			`keeps its data in external file "w.bin"`},
		{"segment", &onnxpb.TensorProto{Name: proto.String("w"), DataType: dt(onnx.Float), Segment: &onnxpb.TensorProto_Segment{}},
			`segments are not supported`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := onnx.TensorFromProto(tc.tp)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v, want %q", err, tc.want)
			}
		})
	}
	bad := &onnx.Tensor{DType: onnx.Float, Dims: []int64{2}, Data: []float64{1, 2}}
	if _, err := onnx.TensorToProto(bad, "b"); err == nil || !strings.Contains(err.Error(), "holds []float64, expected []float32") {
		t.Errorf("mismatched Go type: error = %v", err)
	}
}

// PackInt4Into packs every length around the eight values it packs at a
// time, high nibbles set, as packing pair by pair does.
func TestPackInt4Into(t *testing.T) {
	for n := range 41 {
		vals := make([]byte, n)
		for i := range vals {
			vals[i] = byte(i*37 + 11)
		}
		want := make([]byte, (n+1)/2)
		for i, v := range vals {
			want[i/2] |= (v & 0x0f) << (4 * (i % 2))
		}
		got := make([]byte, (n+1)/2)
		onnx.PackInt4Into(got, vals)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%d values (-want +got):\n%s", n, diff)
		}
	}
}

func TestPackInt4(t *testing.T) {
	tests := []struct {
		name   string
		signed []int8
		packed []byte
	}{
		{"even", []int8{1, 2, -1, -8}, []byte{0x21, 0x8f}},
		{"odd leaves high nibble zero", []int8{7, -2, 3}, []byte{0xe7, 0x03}},
		{"empty", []int8{}, []byte{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.packed, onnx.PackInt4(tc.signed)); diff != "" {
				t.Errorf("PackInt4 (-want +got):\n%s", diff)
			}
			back, err := onnx.UnpackInt4(tc.packed, len(tc.signed))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.signed, back); diff != "" {
				t.Errorf("UnpackInt4 (-want +got):\n%s", diff)
			}
		})
	}
	u, err := onnx.UnpackUint4([]byte{0xf0, 0x0a}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]uint8{0, 15, 10}, u); diff != "" {
		t.Errorf("UnpackUint4 (-want +got):\n%s", diff)
	}
	if _, err := onnx.UnpackUint4([]byte{1}, 3); err == nil {
		t.Error("UnpackUint4 of too few bytes: no error")
	}
}

func TestFloatConversions(t *testing.T) {
	tests := []struct {
		in       float32
		half     float32 // after a float16 round trip
		bfloat16 float32 // after a bfloat16 round trip
	}{
		{1, 1, 1},
		{0.1, 0.099975586, 0.100097656},
		{70000, float32(math.Inf(1)), 70144},
		{-3.140625, -3.140625, -3.140625},
		{1.00390625, 1.00390625, 1}, // ties to even in bfloat16
	}
	for _, tc := range tests {
		if got := onnx.Float32sFromFloat16(onnx.Float16s([]float32{tc.in}))[0]; got != tc.half {
			t.Errorf("float16(%g) = %g, want %g", tc.in, got, tc.half)
		}
		if got := onnx.BF16FromFloat32(tc.in).Float32(); got != tc.bfloat16 {
			t.Errorf("bfloat16(%g) = %g, want %g", tc.in, got, tc.bfloat16)
		}
	}
	if nan := onnx.BF16FromFloat32(float32(math.NaN())).Float32(); !math.IsNaN(float64(nan)) {
		t.Errorf("bfloat16(NaN) = %g", nan)
	}
	q, err := onnx.FromFloat32s(onnx.Int8, []int64{4}, []float32{-300, -1.5, 2.5, 127.4})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int8{-128, -2, 2, 127}, q.Data); diff != "" {
		t.Errorf("FromFloat32s INT8 (-want +got):\n%s", diff)
	}
	i4, err := onnx.FromFloat32s(onnx.Int4, []int64{3}, []float32{-9, 0.5, 6.6})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int8{-8, 0, 7}, i4.Data); diff != "" {
		t.Errorf("FromFloat32s INT4 (-want +got):\n%s", diff)
	}
}

func TestDataTypeHelpers(t *testing.T) {
	for _, tc := range []struct {
		t     onnx.DataType
		bits  int
		float bool
		integ bool
	}{
		{onnx.Float, 32, true, false}, {onnx.Float16, 16, true, false}, {onnx.Int4, 4, false, true},
		{onnx.Uint8, 8, false, true}, {onnx.Bool, 8, false, false}, {onnx.String, 0, false, false},
	} {
		if got := onnx.ElemBits(tc.t); got != tc.bits {
			t.Errorf("ElemBits(%v) = %d, want %d", tc.t, got, tc.bits)
		}
		if got := onnx.IsFloat(tc.t); got != tc.float {
			t.Errorf("IsFloat(%v) = %v", tc.t, got)
		}
		if got := onnx.IsInteger(tc.t); got != tc.integ {
			t.Errorf("IsInteger(%v) = %v", tc.t, got)
		}
	}
	if got := onnx.ByteSize(onnx.Int4, 5); got != 3 {
		t.Errorf("ByteSize(INT4, 5) = %d, want 3", got)
	}
	if got, err := onnx.ParseDataType("float16"); err != nil || got != onnx.Float16 {
		t.Errorf("ParseDataType(float16) = %v, %v", got, err)
	}
	if _, err := onnx.ParseDataType("float17"); err == nil || !strings.Contains(err.Error(), `unknown ONNX data type "float17"`) {
		t.Errorf("ParseDataType(float17) error = %v", err)
	}
}
