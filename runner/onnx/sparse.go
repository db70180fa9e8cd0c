package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"sort"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// SparseToDense expands a COO sparse tensor. Indices are int64 (int32,
// int16 and int8 accepted, as ONNX Runtime accepts them), either [NNZ]
// linear indices or [NNZ, rank] coordinates. The whole tensor is checked
// first (checkSparse), so the dense tensor is allocated only for valid
// dims within MaxDenseBytes; every error wraps ErrInvalid.
func SparseToDense(st *onnxpb.SparseTensorProto) (*Tensor, error) {
	if err := checkSparse(st); err != nil {
		return nil, invalidf("sparse tensor %q %s: %w", st.GetValues().GetName(), describeSparse(st, err), err)
	}
	values, err := TensorFromProto(st.GetValues())
	if err != nil {
		return nil, invalidf("sparse values: %w", err)
	}
	dims := append([]int64{}, st.GetDims()...)
	dense, err := Zeros(values.DType, dims)
	if err != nil {
		return nil, invalid(err)
	}
	nnz := values.Len()
	if nnz == 0 {
		return dense, nil
	}
	idx := st.GetIndices()
	at, _ := indexReader(idx) // checked by checkSparse
	linear := make([]int, nnz)
	if rank := len(dims); len(idx.GetDims()) == 2 {
		for i := range nnz {
			off := 0
			for r := range rank {
				off = off*int(dims[r]) + int(at(i*rank+r))
			}
			linear[i] = off
		}
	} else {
		for i := range linear {
			linear[i] = int(at(i))
		}
	}
	if err := scatter(dense.Data, values.Data, linear); err != nil {
		return nil, invalid(err)
	}
	return dense, nil
}

// describeSparse is a sparse tensor's type and dense dims for a message
// about err (see describe).
func describeSparse(st *onnxpb.SparseTensorProto, err error) string {
	return typeAndDims(DataType(st.GetValues().GetDataType()), st.GetDims(), err)
}

// checkSparse checks everything SparseToDense relies on, without decoding
// or allocating: values present and whole, dims valid with a dense form
// within MaxDenseBytes, no more values than elements, and (when there are
// values) indices present, whole, of an integer type, shaped [NNZ] or
// [NNZ, rank] and each inside dims.
func checkSparse(st *onnxpb.SparseTensorProto) error {
	values := st.GetValues()
	if values == nil {
		return fmt.Errorf("values are missing")
	}
	dt := DataType(values.GetDataType())
	nnz, err := checkLayout(values)
	if err == nil {
		err = checkData(dt, values, nnz)
	}
	if err != nil {
		return fmt.Errorf("values %s: %w", describe(values, err), err)
	}
	dims := st.GetDims()
	total, err := CountElements(dims)
	if err == nil {
		err = checkDense(dt, total)
	}
	if err != nil {
		return err
	}
	if nnz > total {
		return fmt.Errorf("%d values for the %d elements of dims %v", nnz, total, dims)
	}
	if nnz == 0 {
		return nil
	}
	idx := st.GetIndices()
	if idx == nil {
		return fmt.Errorf("indices are missing for %d values", nnz)
	}
	count, err := checkLayout(idx)
	if err == nil {
		err = checkData(DataType(idx.GetDataType()), idx, count)
	}
	if err != nil {
		return fmt.Errorf("indices %s: %w", describe(idx, err), err)
	}
	at, err := indexReader(idx)
	if err != nil {
		return err
	}
	rank := len(dims)
	switch idims := idx.GetDims(); {
	case len(idims) == 1 && count == nnz:
		for i := range nnz {
			if l := at(i); l < 0 || l >= int64(total) {
				return fmt.Errorf("sparse index %d is outside the %d elements of dims %v", l, total, dims)
			}
		}
	case len(idims) == 2 && idims[0] == int64(nnz) && idims[1] == int64(rank):
		for i := range nnz {
			for r := range rank {
				if c := at(i*rank + r); c < 0 || c >= dims[r] {
					return fmt.Errorf("sparse index %d: coordinate %d is %d, outside dim %d", i, r, c, dims[r])
				}
			}
		}
	default:
		return fmt.Errorf("sparse indices have dims %v, expected [%d] or [%d, %d]", idims, nnz, nnz, rank)
	}
	return nil
}

// indexReader reads element i of an integer index tensor where it is
// stored (raw_data or int64_data/int32_data), without decoding the tensor.
// The tensor's data must have been checked (checkData).
func indexReader(tp *onnxpb.TensorProto) (func(i int) int64, error) {
	le := binary.LittleEndian
	raw, ints := tp.RawData, tp.GetInt32Data()
	switch dt := DataType(tp.GetDataType()); {
	case dt == Int64 && raw != nil:
		return func(i int) int64 { return int64(le.Uint64(raw[8*i:])) }, nil
	case dt == Int64:
		i64 := tp.GetInt64Data()
		return func(i int) int64 { return i64[i] }, nil
	case dt == Int32 && raw != nil:
		return func(i int) int64 { return int64(int32(le.Uint32(raw[4*i:]))) }, nil
	case dt == Int32:
		return func(i int) int64 { return int64(ints[i]) }, nil
	case dt == Int16 && raw != nil:
		return func(i int) int64 { return int64(int16(le.Uint16(raw[2*i:]))) }, nil
	case dt == Int16:
		return func(i int) int64 { return int64(int16(ints[i])) }, nil
	case dt == Int8 && raw != nil:
		return func(i int) int64 { return int64(int8(raw[i])) }, nil
	case dt == Int8:
		return func(i int) int64 { return int64(int8(ints[i])) }, nil
	default:
		return nil, fmt.Errorf("sparse indices are %v, expected INT64", dt)
	}
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

// SparseIndices chooses how Sparsify writes COO indices.
type SparseIndices int

const (
	// LinearIndices writes [NNZ] row-major element offsets: the smaller form.
	LinearIndices SparseIndices = iota
	// CoordinateIndices writes [NNZ, rank] coordinates.
	CoordinateIndices
	// CompactIndices writes [NNZ] linear offsets in the narrowest of int8,
	// int16, int32 and int64 that holds the largest offset. ONNX Runtime
	// reads all four; the ONNX checker asks for int64, so use it for files
	// meant for ONNX Runtime. It is what makes a pruned model really
	// smaller: at 80% zeros int64 indices keep 60% of the dense bytes,
	// int16 indices 30%.
	CompactIndices
)

// Sparsify stores the named weights as sparse initializers (COO, int64
// indices) where that takes fewer bytes than dense storage, and returns the
// names it converted. A Constant-node weight first becomes an initializer
// of its graph (a Constant with sparse_value would produce a sparse tensor,
// which operators do not accept). Elements whose bits are all zero are
// left out, so reading the weight back gives the same bits. 4-bit types,
// scalars and weights past MaxDenseBytes stay dense. The IR version is
// raised to 6 if needed, the first with sparse initializers.
func (m *Model) Sparsify(names []string, indices SparseIndices) ([]string, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var converted []string
	for _, w := range m.Weights() {
		if !want[w.Name] {
			continue
		}
		delete(want, w.Name)
		ok, err := m.sparsifyWeight(w, indices)
		if err != nil {
			return converted, err
		}
		if ok {
			converted = append(converted, w.Name)
		}
	}
	if len(want) > 0 {
		var missing []string
		for n := range want {
			missing = append(missing, n)
		}
		sort.Strings(missing)
		return converted, fmt.Errorf("%s: Sparsify: no weights named %q", m.label(), missing)
	}
	if len(converted) > 0 {
		m.RaiseIRVersion(6) // sparse initializers arrived in IR 6
	}
	return converted, nil
}

func (m *Model) sparsifyWeight(w *Weight, indices SparseIndices) (bool, error) {
	if w.Kind == KindSparseInitializer || len(w.Dims) == 0 || ElemBits(w.DType) < 8 || w.DType == String {
		return false, nil
	}
	if checkDense(w.DType, w.NumElements()) != nil {
		return false, nil // a sparse tensor this big would be refused when read back
	}
	t, err := w.Tensor()
	if err != nil {
		return false, err
	}
	raw, err := EncodeRaw(t)
	if err != nil {
		return false, fmt.Errorf("weight %q: %w", w.Name, err)
	}
	size := ElemBits(w.DType) / 8
	var nz []int64
	for i := 0; i < t.Len(); i++ {
		for _, b := range raw[i*size : (i+1)*size] {
			if b != 0 {
				nz = append(nz, int64(i))
				break
			}
		}
	}
	perIndex, indexBytes := 1, 8
	if indices == CoordinateIndices {
		perIndex = len(w.Dims)
	}
	if indices == CompactIndices {
		indexBytes = compactIndexBytes(t.Len() - 1)
	}
	if len(nz)*(size+indexBytes*perIndex) >= len(raw) {
		return false, nil // dense is no larger
	}
	values := make([]byte, 0, len(nz)*size)
	for _, i := range nz {
		values = append(values, raw[int(i)*size:(int(i)+1)*size]...)
	}
	idx := NewTensor([]int64{int64(len(nz))}, nz)
	switch indices {
	case CoordinateIndices:
		idx = NewTensor([]int64{int64(len(nz)), int64(len(w.Dims))}, coordinates(nz, w.Dims))
	case CompactIndices:
		idx = narrowIndices(nz, indexBytes)
	}
	idxProto, err := TensorToProto(idx, w.Name+"_indices")
	if err != nil {
		return false, err
	}
	st := &onnxpb.SparseTensorProto{
		Values: &onnxpb.TensorProto{
			Name: proto.String(w.Name), DataType: proto.Int32(int32(w.DType)),
			Dims: []int64{int64(len(nz))}, RawData: values,
		},
		Indices: idxProto,
		Dims:    append([]int64{}, w.Dims...),
	}
	g := w.Graph.Graph
	switch w.Kind {
	case KindInitializer:
		g.Initializer = removeTensor(g.Initializer, w.tp)
	case KindConstant:
		g.Node = removeNode(g.Node, w.Node)
	}
	g.SparseInitializer = append(g.SparseInitializer, st)
	return true, nil
}

// compactIndexBytes is the width of the narrowest signed integer type that
// holds offsets up to largest.
func compactIndexBytes(largest int) int {
	switch {
	case largest <= math.MaxInt8:
		return 1
	case largest <= math.MaxInt16:
		return 2
	case largest <= math.MaxInt32:
		return 4
	}
	return 8
}

// narrowIndices stores offsets as a [NNZ] tensor of width bytes per index.
func narrowIndices(offsets []int64, width int) *Tensor {
	dims := []int64{int64(len(offsets))}
	switch width {
	case 1:
		return NewTensor(dims, convert(offsets, func(v int64) int8 { return int8(v) }))
	case 2:
		return NewTensor(dims, convert(offsets, func(v int64) int16 { return int16(v) }))
	case 4:
		return NewTensor(dims, convert(offsets, func(v int64) int32 { return int32(v) }))
	}
	return NewTensor(dims, offsets)
}

// coordinates turns row-major offsets into [len(offsets), rank] indices.
func coordinates(offsets []int64, dims []int64) []int64 {
	rank := len(dims)
	out := make([]int64, len(offsets)*rank)
	for i, off := range offsets {
		for r := rank - 1; r >= 0; r-- {
			out[i*rank+r] = off % dims[r]
			off /= dims[r]
		}
	}
	return out
}

func removeTensor(list []*onnxpb.TensorProto, tp *onnxpb.TensorProto) []*onnxpb.TensorProto {
	for i, t := range list {
		if t == tp {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

func removeNode(list []*onnxpb.NodeProto, n *onnxpb.NodeProto) []*onnxpb.NodeProto {
	for i, x := range list {
		if x == n {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}
