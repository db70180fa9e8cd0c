package onnx

import (
	"fmt"
	"reflect"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// SparseToDense expands a COO sparse tensor. Indices are int64 (int32
// accepted), either [NNZ] linear indices or [NNZ, rank] coordinates.
func SparseToDense(st *onnxpb.SparseTensorProto) (*Tensor, error) {
	values, err := TensorFromProto(st.GetValues())
	if err != nil {
		return nil, fmt.Errorf("sparse values: %w", err)
	}
	dims := append([]int64{}, st.GetDims()...)
	dense, err := Zeros(values.DType, dims)
	if err != nil {
		return nil, err
	}
	nnz := values.Len()
	if nnz == 0 {
		return dense, nil
	}
	idx, err := TensorFromProto(st.GetIndices())
	if err != nil {
		return nil, fmt.Errorf("sparse indices: %w", err)
	}
	var ind []int64
	switch d := idx.Data.(type) {
	case []int64:
		ind = d
	case []int32:
		ind = convert(d, func(v int32) int64 { return int64(v) })
	default:
		return nil, fmt.Errorf("sparse indices are %v, expected INT64", idx.DType)
	}
	rank := len(dims)
	linear := make([]int, nnz)
	switch {
	case len(idx.Dims) == 1 && len(ind) == nnz:
		for i, v := range ind {
			linear[i] = int(v)
		}
	case len(idx.Dims) == 2 && idx.Dims[0] == int64(nnz) && idx.Dims[1] == int64(rank):
		for i := range nnz {
			off := 0
			for r := range rank {
				c := ind[i*rank+r]
				if c < 0 || c >= dims[r] {
					return nil, fmt.Errorf("sparse index %d: coordinate %d is %d, outside dim %d", i, r, c, dims[r])
				}
				off = off*int(dims[r]) + int(c)
			}
			linear[i] = off
		}
	default:
		return nil, fmt.Errorf("sparse indices have dims %v, expected [%d] or [%d, %d]", idx.Dims, nnz, nnz, rank)
	}
	total := dense.Len()
	for _, l := range linear {
		if l < 0 || l >= total {
			return nil, fmt.Errorf("sparse index %d is outside the %d elements of dims %v", l, total, dims)
		}
	}
	if err := scatter(dense.Data, values.Data, linear); err != nil {
		return nil, err
	}
	return dense, nil
}

// scatter sets dst[idx[i]] = src[i] for slices of the same element type.
func scatter(dst, src any, idx []int) error {
	switch d := dst.(type) {
	case []float32:
		scatterT(d, src.([]float32), idx)
	case []float64:
		scatterT(d, src.([]float64), idx)
	case []int8:
		scatterT(d, src.([]int8), idx)
	case []uint8:
		scatterT(d, src.([]uint8), idx)
	case []int16:
		scatterT(d, src.([]int16), idx)
	case []uint16:
		scatterT(d, src.([]uint16), idx)
	case []int32:
		scatterT(d, src.([]int32), idx)
	case []uint32:
		scatterT(d, src.([]uint32), idx)
	case []int64:
		scatterT(d, src.([]int64), idx)
	case []uint64:
		scatterT(d, src.([]uint64), idx)
	case []bool:
		scatterT(d, src.([]bool), idx)
	case []BF16:
		scatterT(d, src.([]BF16), idx)
	default:
		return scatterReflect(dst, src, idx)
	}
	return nil
}

func scatterT[T any](dst, src []T, idx []int) {
	for i, j := range idx {
		dst[j] = src[i]
	}
}

// scatterReflect handles the remaining element types (FLOAT16, STRING,
// complex).
func scatterReflect(dst, src any, idx []int) error {
	d, s := reflect.ValueOf(dst), reflect.ValueOf(src)
	if d.Type() != s.Type() {
		return fmt.Errorf("sparse values are %T, dense tensor %T", src, dst)
	}
	for i, j := range idx {
		d.Index(j).Set(s.Index(i))
	}
	return nil
}
