package ort

import (
	"fmt"

	ortgo "github.com/yalue/onnxruntime_go"

	"github.com/kompress/kompress/runner/onnx"
)

// toValue copies nothing for numeric tensors: ONNX Runtime reads the Go
// slice in place for the duration of the run.
func toValue(t *onnx.Tensor) (ortgo.Value, error) {
	if err := t.Validate(); err != nil {
		return nil, err
	}
	shape := ortgo.Shape(t.Dims)
	switch d := t.Data.(type) {
	case []float32:
		return typed(shape, d)
	case []float64:
		return typed(shape, d)
	case []int8:
		if t.DType == onnx.Int8 {
			return typed(shape, d)
		}
	case []uint8:
		if t.DType == onnx.Uint8 {
			return typed(shape, d)
		}
	case []int16:
		return typed(shape, d)
	case []uint16:
		return typed(shape, d)
	case []int32:
		return typed(shape, d)
	case []uint32:
		return typed(shape, d)
	case []int64:
		return typed(shape, d)
	case []uint64:
		return typed(shape, d)
	case []bool:
		return typed(shape, d)
	case []string:
		if len(shape) == 0 {
			return nil, fmt.Errorf("scalar STRING tensors are not supported by onnxruntime_go")
		}
		st, err := ortgo.NewStringTensor(shape)
		if err != nil {
			return nil, err
		}
		if err := st.SetContents(d); err != nil {
			st.Destroy()
			return nil, err
		}
		return st, nil
	case []complex64, []complex128:
		return nil, fmt.Errorf("%v tensors are not supported by ONNX Runtime", t.DType)
	}
	// FLOAT16, BFLOAT16, INT4, UINT4, FLOAT8*: no Go element type in
	// onnxruntime_go, so hand over the raw bytes.
	if len(shape) == 0 {
		return nil, fmt.Errorf("scalar %v tensors are not supported by onnxruntime_go", t.DType)
	}
	raw, err := onnx.EncodeRaw(t)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		raw = []byte{0} // onnxruntime_go refuses empty buffers, even for zero elements
	}
	return ortgo.NewCustomDataTensor(shape, raw, ortgo.TensorElementDataType(t.DType))
}

func typed[T ortgo.TensorData](shape ortgo.Shape, data []T) (ortgo.Value, error) {
	if len(shape) == 0 {
		return ortgo.NewScalar(data[0])
	}
	return ortgo.NewTensor(shape, data)
}

// emptyValue allocates an output of a known shape.
func emptyValue(dt onnx.DataType, shape []int64) (ortgo.Value, error) {
	s := ortgo.Shape(append([]int64{}, shape...))
	switch dt {
	case onnx.Float:
		return emptyTyped[float32](s)
	case onnx.Double:
		return emptyTyped[float64](s)
	case onnx.Int8:
		return emptyTyped[int8](s)
	case onnx.Uint8:
		return emptyTyped[uint8](s)
	case onnx.Int16:
		return emptyTyped[int16](s)
	case onnx.Uint16:
		return emptyTyped[uint16](s)
	case onnx.Int32:
		return emptyTyped[int32](s)
	case onnx.Uint32:
		return emptyTyped[uint32](s)
	case onnx.Int64:
		return emptyTyped[int64](s)
	case onnx.Uint64:
		return emptyTyped[uint64](s)
	case onnx.Bool:
		return emptyTyped[bool](s)
	case onnx.String, onnx.Complex64, onnx.Complex128, onnx.Undefined:
		return nil, fmt.Errorf("cannot preallocate a %v output", dt)
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("scalar %v outputs are not supported by onnxruntime_go", dt)
	}
	n := onnx.ByteSize(dt, onnx.NumElements(shape))
	return ortgo.NewCustomDataTensor(s, make([]byte, max(n, 1)), ortgo.TensorElementDataType(dt))
}

func emptyTyped[T ortgo.TensorData](s ortgo.Shape) (ortgo.Value, error) {
	if len(s) == 0 {
		return ortgo.NewEmptyScalar[T]()
	}
	return ortgo.NewTensor(s, make([]T, onnx.NumElements(s)))
}

// fromValue converts an output.
func fromValue(v ortgo.Value) (*onnx.Tensor, error) {
	switch t := v.(type) {
	case *ortgo.Tensor[float32]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[float64]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[int8]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[uint8]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[int16]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[uint16]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[int32]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[uint32]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[int64]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[uint64]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Tensor[bool]:
		return onnx.NewTensor(t.GetShape(), t.GetData()), nil
	case *ortgo.Scalar[float32]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[float64]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[int8]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[uint8]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[int16]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[uint16]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[int32]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[uint32]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[int64]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[uint64]:
		return scalar(t.GetData()), nil
	case *ortgo.Scalar[bool]:
		return scalar(t.GetData()), nil
	case *ortgo.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return nil, err
		}
		return onnx.NewTensor(t.GetShape(), s), nil
	case *ortgo.CustomDataTensor:
		dt := onnx.DataType(t.DataType())
		dims := []int64(t.GetShape().Clone())
		raw := t.GetData()
		n := onnx.NumElements(dims)
		if len(raw) < onnx.ByteSize(dt, n) {
			return nil, fmt.Errorf("%v output of dims %v has %d bytes, expected %d", dt, dims, len(raw), onnx.ByteSize(dt, n))
		}
		data, err := onnx.DecodeRaw(dt, raw[:onnx.ByteSize(dt, n)], n)
		if err != nil {
			return nil, err
		}
		return &onnx.Tensor{DType: dt, Dims: dims, Data: data}, nil
	case nil:
		return nil, fmt.Errorf("ONNX Runtime returned no value")
	}
	return nil, fmt.Errorf("outputs of ONNX type %v are not supported (only tensors)", v.GetONNXType())
}

func scalar[T onnx.Element](v T) *onnx.Tensor { return onnx.NewTensor([]int64{}, []T{v}) }
