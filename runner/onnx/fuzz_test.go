package onnx_test

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// The fuzz targets of the ONNX reader. Their seed corpora are committed
// under testdata/fuzz/<target>/ (TestFuzzSeeds keeps the seed-* files in
// step with the crafted models and mnist-8) and run with every `go test`;
// hack/fuzz.sh fuzzes each target for a fixed time in CI. A crasher the
// fuzzer finds is written next to them: fix the bug and commit the file.
//
// Each target lowers MaxDenseBytes to 1 MiB, so an input that describes a
// big sparse tensor costs the fuzzer little while still crossing the cap.

const fuzzDenseBytes = 1 << 20

// FuzzLoad: Load either refuses the bytes as bad input (ErrInvalid) or
// returns a model every weight of which decodes, and which saves and loads
// again.
func FuzzLoad(f *testing.F) {
	defer onnx.SetMaxDenseBytes(fuzzDenseBytes)()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.Load(data)
		if err != nil {
			if !errors.Is(err, onnx.ErrInvalid) {
				t.Fatalf("Load error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		for _, w := range m.Weights() {
			tensor, err := w.Tensor()
			if err != nil {
				if onnx.Decodable(w.DType) {
					t.Fatalf("Load accepted the model but weight %q does not decode: %v", w.Name, err)
				}
				continue
			}
			if err := tensor.Validate(); err != nil {
				t.Fatalf("weight %q decodes to an invalid tensor: %v", w.Name, err)
			}
		}
		b, err := m.Bytes()
		if err != nil {
			t.Fatalf("Bytes: %v", err)
		}
		if _, err := onnx.Load(b); err != nil {
			t.Fatalf("Load accepted the model but not its own serialization: %v", err)
		}
	})
}

// FuzzStats is `kompress inspect`: Load, then Stats. A model Load
// accepted is always measured by Stats, and its counts are sane.
func FuzzStats(f *testing.F) {
	defer onnx.SetMaxDenseBytes(fuzzDenseBytes)()
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := onnx.Load(data)
		if err != nil {
			return
		}
		st, err := m.Stats()
		if err != nil {
			// FLOAT8 and FLOAT4 weights are counted by bit pattern: a
			// model Load accepts is always measured.
			t.Fatalf("Load accepted the model, Stats fails: %v", err)
		}
		if st.NonZero < 0 || st.NonZero > st.Params || st.QuantizedParams < 0 || st.WeightBytes < 0 ||
			math.IsNaN(st.Sparsity) || st.Sparsity < 0 || st.Sparsity > 1 {
			t.Fatalf("inconsistent stats: %+v", st)
		}
	})
}

// FuzzTensorFromProto decodes a serialized TensorProto: an error wraps
// ErrInvalid and agrees with Load's check; a tensor is valid and survives
// an encode/decode round trip bit for bit.
func FuzzTensorFromProto(f *testing.F) {
	defer onnx.SetMaxDenseBytes(fuzzDenseBytes)()
	f.Fuzz(func(t *testing.T, data []byte) {
		var tp onnxpb.TensorProto
		if proto.Unmarshal(data, &tp) != nil {
			return
		}
		checked := onnx.CheckTensor(&tp)
		tensor, err := onnx.TensorFromProto(&tp)
		if err != nil {
			if !errors.Is(err, onnx.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if checked == nil && onnx.Decodable(onnx.DataType(tp.GetDataType())) {
				t.Fatalf("Load's check accepts the tensor, TensorFromProto refuses it: %v", err)
			}
			return
		}
		if checked != nil {
			t.Fatalf("TensorFromProto decodes the tensor, Load's check refuses it: %v", checked)
		}
		if err := tensor.Validate(); err != nil {
			t.Fatalf("decoded an invalid tensor: %v", err)
		}
		back, err := onnx.TensorToProto(tensor, tp.GetName())
		if err != nil {
			t.Fatalf("TensorToProto: %v", err)
		}
		again, err := onnx.TensorFromProto(back)
		if err != nil {
			t.Fatalf("decoding the re-encoded tensor: %v", err)
		}
		if again.DType != tensor.DType || !slices.Equal(again.Dims, tensor.Dims) || !sameData(t, tensor, again) {
			t.Fatalf("round trip changed the tensor: %v %v, then %v %v", tensor.DType, tensor.Dims, again.DType, again.Dims)
		}
	})
}

// FuzzSparseToDense expands a serialized SparseTensorProto: an error
// wraps ErrInvalid and agrees with Load's check; a dense tensor is valid
// and has the sparse tensor's dims.
func FuzzSparseToDense(f *testing.F) {
	defer onnx.SetMaxDenseBytes(fuzzDenseBytes)()
	f.Fuzz(func(t *testing.T, data []byte) {
		var st onnxpb.SparseTensorProto
		if proto.Unmarshal(data, &st) != nil {
			return
		}
		checked := onnx.CheckSparse(&st)
		dense, err := onnx.SparseToDense(&st)
		if err != nil {
			if !errors.Is(err, onnx.ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if checked == nil {
				t.Fatalf("Load's check accepts the sparse tensor, SparseToDense refuses it: %v", err)
			}
			return
		}
		if checked != nil {
			t.Fatalf("SparseToDense expands the sparse tensor, Load's check refuses it: %v", checked)
		}
		if err := dense.Validate(); err != nil {
			t.Fatalf("expanded to an invalid tensor: %v", err)
		}
		if !slices.Equal(dense.Dims, st.GetDims()) && !(len(dense.Dims) == 0 && len(st.GetDims()) == 0) {
			t.Fatalf("dense dims %v, sparse dims %v", dense.Dims, st.GetDims())
		}
	})
}

// sameData compares two tensors' data bit for bit (NaNs included).
func sameData(t *testing.T, a, b *onnx.Tensor) bool {
	if s, ok := a.Data.([]string); ok {
		return slices.Equal(s, b.Data.([]string))
	}
	ra, err := onnx.EncodeRaw(a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := onnx.EncodeRaw(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ra, rb)
}
