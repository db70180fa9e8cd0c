package dataset

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"

	"github.com/sbinet/npyio/npy"
	"github.com/x448/float16"
)

// Array is one named n-dimensional array of an .npz file, in C order.
type Array struct {
	Name  string
	Shape []int
	// Data holds prod(Shape) elements: []bool, []uint8, []int8, []uint16,
	// []int16, []uint32, []int32, []uint64, []int64, []float16.Float16,
	// []float32 or []float64.
	Data any
}

// DType is the NumPy name of the array's element type ("uint8", "float32").
func (a Array) DType() string {
	if d, ok := dtypeOf(a.Data); ok {
		return d.name
	}
	return fmt.Sprintf("%T", a.Data)
}

// dtype is an element type as .npy files spell it.
type dtype struct {
	name string // NumPy name
	code string // descr without byte order: "u1", "f4"
	size int
}

var dtypes = []dtype{
	{"bool", "b1", 1},
	{"uint8", "u1", 1}, {"int8", "i1", 1},
	{"uint16", "u2", 2}, {"int16", "i2", 2},
	{"uint32", "u4", 4}, {"int32", "i4", 4},
	{"uint64", "u8", 8}, {"int64", "i8", 8},
	{"float16", "f2", 2}, {"float32", "f4", 4}, {"float64", "f8", 8},
}

func dtypeOf(data any) (dtype, bool) {
	var name string
	switch data.(type) {
	case []bool:
		name = "bool"
	case []uint8:
		name = "uint8"
	case []int8:
		name = "int8"
	case []uint16:
		name = "uint16"
	case []int16:
		name = "int16"
	case []uint32:
		name = "uint32"
	case []int32:
		name = "int32"
	case []uint64:
		name = "uint64"
	case []int64:
		name = "int64"
	case []float16.Float16:
		name = "float16"
	case []float32:
		name = "float32"
	case []float64:
		name = "float64"
	}
	for _, d := range dtypes {
		if d.name == name {
			return d, true
		}
	}
	return dtype{}, false
}

// parseDescr reads a .npy descr such as "<f4", "|u1" or ">i8".
func parseDescr(descr string) (dtype, binary.ByteOrder, error) {
	order := binary.ByteOrder(binary.LittleEndian)
	code := descr
	if code != "" {
		switch code[0] {
		case '<', '|', '=':
			code = code[1:]
		case '>':
			order, code = binary.BigEndian, code[1:]
		}
	}
	for _, d := range dtypes {
		if d.code == code {
			return d, order, nil
		}
	}
	return dtype{}, nil, fmt.Errorf("element type %q is not supported (want one of bool, uint8, int8, ..., int64, float16, float32, float64)", descr)
}

// readNPY reads one .npy stream of at most limit bytes. npyio parses the
// header; the data is read here with io.ReadFull in one piece, because
// npyio's element-by-element reads ignore short reads (which a compressed
// .npz stream produces) and silently zero-fill truncated data. The header's
// shape is checked against limit before anything is allocated: a few
// bytes of header may claim terabytes.
func readNPY(name string, r io.Reader, limit int64) (Array, error) {
	rd, err := npy.NewReader(r)
	if err != nil {
		return Array{}, fmt.Errorf("%s: not a .npy array: %w", name, err)
	}
	h := rd.Header.Descr
	if h.Fortran && len(h.Shape) > 1 {
		return Array{}, fmt.Errorf("%s: Fortran-ordered arrays are not supported; save it with numpy.ascontiguousarray", name)
	}
	dt, order, err := parseDescr(h.Type)
	if err != nil {
		return Array{}, fmt.Errorf("%s: %w", name, err)
	}
	n := 1
	for _, d := range h.Shape {
		if d < 0 {
			return Array{}, fmt.Errorf("%s: negative dimension in shape %v", name, h.Shape)
		}
		if d > 0 && n > math.MaxInt/dt.size/d {
			return Array{}, fmt.Errorf("%s: shape %v is too large", name, h.Shape)
		}
		n *= d
	}
	if need := int64(n) * int64(dt.size); need > limit {
		return Array{}, fmt.Errorf("%s: shape %v of %s needs %d bytes of data, the entry holds %d", name, h.Shape, dt.name, need, limit)
	}
	buf := make([]byte, n*dt.size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return Array{}, fmt.Errorf("%s: shape %v of %s needs %d bytes of data: %w", name, h.Shape, dt.name, len(buf), err)
	}
	shape := append([]int{}, h.Shape...)
	return Array{Name: name, Shape: shape, Data: decode(dt, order, buf, n)}, nil
}

func decode(dt dtype, o binary.ByteOrder, b []byte, n int) any {
	switch dt.name {
	case "bool":
		out := make([]bool, n)
		for i := range out {
			out[i] = b[i] != 0
		}
		return out
	case "uint8":
		return b
	case "int8":
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(b[i])
		}
		return out
	case "uint16":
		return decodeInts(b, n, 2, func(p []byte) uint16 { return o.Uint16(p) })
	case "int16":
		return decodeInts(b, n, 2, func(p []byte) int16 { return int16(o.Uint16(p)) })
	case "uint32":
		return decodeInts(b, n, 4, func(p []byte) uint32 { return o.Uint32(p) })
	case "int32":
		return decodeInts(b, n, 4, func(p []byte) int32 { return int32(o.Uint32(p)) })
	case "uint64":
		return decodeInts(b, n, 8, func(p []byte) uint64 { return o.Uint64(p) })
	case "int64":
		return decodeInts(b, n, 8, func(p []byte) int64 { return int64(o.Uint64(p)) })
	case "float16":
		return decodeInts(b, n, 2, func(p []byte) float16.Float16 { return float16.Frombits(o.Uint16(p)) })
	case "float32":
		return decodeInts(b, n, 4, func(p []byte) float32 { return math.Float32frombits(o.Uint32(p)) })
	default: // float64
		return decodeInts(b, n, 8, func(p []byte) float64 { return math.Float64frombits(o.Uint64(p)) })
	}
}

func decodeInts[T any](b []byte, n, size int, get func([]byte) T) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = get(b[i*size : i*size+size])
	}
	return out
}

// writeNPY writes a version 1.0 .npy stream, little-endian, C order.
func writeNPY(w io.Writer, a Array) error {
	dt, ok := dtypeOf(a.Data)
	if !ok {
		return fmt.Errorf("array %q: unsupported data type %T", a.Name, a.Data)
	}
	n := 1
	for _, d := range a.Shape {
		n *= d
	}
	if got := lenOf(a.Data); got != n {
		return fmt.Errorf("array %q: shape %v needs %d elements, data has %d", a.Name, a.Shape, n, got)
	}
	var dims []string
	for _, d := range a.Shape {
		dims = append(dims, fmt.Sprint(d))
	}
	shape := strings.Join(dims, ", ")
	if len(a.Shape) == 1 {
		shape += ","
	}
	descr := "<" + dt.code
	if dt.size == 1 {
		descr = "|" + dt.code
	}
	dict := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape)
	// Magic (6) + version (2) + length (2) + dict + newline, padded to 64.
	pad := 64 - (10+len(dict)+1)%64
	if pad == 64 {
		pad = 0
	}
	header := dict + strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	_ = binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	b.WriteString(header)
	if _, err := w.Write(b.Bytes()); err != nil {
		return err
	}
	if u, ok := a.Data.([]uint8); ok {
		_, err := w.Write(u)
		return err
	}
	return binary.Write(w, binary.LittleEndian, a.Data)
}

func lenOf(data any) int {
	switch v := data.(type) {
	case []bool:
		return len(v)
	case []uint8:
		return len(v)
	case []int8:
		return len(v)
	case []uint16:
		return len(v)
	case []int16:
		return len(v)
	case []uint32:
		return len(v)
	case []int32:
		return len(v)
	case []uint64:
		return len(v)
	case []int64:
		return len(v)
	case []float16.Float16:
		return len(v)
	case []float32:
		return len(v)
	case []float64:
		return len(v)
	}
	return -1
}

// Slice returns rows [from, to) of the array's first dimension, sharing
// memory with a.
func (a Array) Slice(from, to int) Array {
	inner := 1
	for _, d := range a.Shape[1:] {
		inner *= d
	}
	out := a
	out.Shape = append([]int{to - from}, a.Shape[1:]...)
	v := reflect.ValueOf(a.Data)
	out.Data = v.Slice3(from*inner, to*inner, to*inner).Interface()
	return out
}
