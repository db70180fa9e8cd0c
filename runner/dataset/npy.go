package dataset

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"

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

// budget is what is left of a file's limits while its arrays are read.
type budget struct {
	Limits
	used int64 // bytes of the arrays read so far
}

// claim checks an array's declared shape, before anything is allocated
// for it, against the held bytes of data that follow its header in the
// entry and against the limits, and counts its bytes: every dim >= 0;
// the shape's bytes exactly held; the first dim (the samples) at most
// MaxSamples; the dims (a 0 counted as 1, so that no product of them can
// overflow downstream) spanning at most MaxBytes; and the array's bytes
// at most what the file's earlier arrays left of MaxBytes. It returns
// the number of elements.
func (b *budget) claim(shape []int64, dt dtype, held int64) (int, error) {
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v: dim %d is %d, expected >= 0", shape, i, d)
		}
	}
	// span is the bytes of the dims with a 0 counted as 1, up to the
	// point it passes MaxInt64 (then over).
	span, empty, over := int64(dt.size), false, false
	for _, d := range shape {
		switch {
		case d == 0:
			empty = true
		case span > math.MaxInt64/d:
			over = true
		default:
			span *= d
		}
	}
	need := span
	if empty {
		need = 0
	}
	if !empty && (over || need != held) {
		msg := fmt.Sprint(need)
		if over {
			msg = "more than 2^63"
		}
		return 0, fmt.Errorf("shape %v of %s needs %s bytes of data, the entry holds %d", shape, dt.name, msg, held)
	}
	if empty && held != 0 {
		return 0, fmt.Errorf("shape %v of %s is empty, the entry holds %d bytes of data", shape, dt.name, held)
	}
	if len(shape) > 0 && shape[0] > b.MaxSamples {
		return 0, fmt.Errorf("shape %v: %d samples along the first dim, more than %s", shape, shape[0], b.samplesLimit())
	}
	if over || span > b.MaxBytes {
		if empty {
			return 0, fmt.Errorf("shape %v of %s: its dims (a 0 counted as 1) span more than %s", shape, dt.name, b.bytesLimit())
		}
		return 0, fmt.Errorf("shape %v of %s needs %d bytes, more than %s", shape, dt.name, need, b.bytesLimit())
	}
	if need > b.MaxBytes-b.used {
		return 0, fmt.Errorf("shape %v of %s needs %d bytes, which with the %d bytes of the arrays before it is more than %s",
			shape, dt.name, need, b.used, b.bytesLimit())
	}
	b.used += need
	return int(need / int64(dt.size)), nil
}

// readNPY reads one .npy stream of exactly size bytes (a zip entry whose
// size the caller checked against the file). The header is parsed
// strictly (readHeader); its shape must describe exactly the bytes that
// follow it in the entry and fit what is left of the limits, all checked
// before the data is allocated. The data is then decoded through a small
// buffer into a slice of its own element type (the only allocation the
// array's size decides), and the stream is read to its end so that the
// archive checks the entry's checksum. Errors say what was expected; the
// caller names the file and the entry.
func readNPY(r io.Reader, size int64, b *budget) (Array, error) {
	h, err := readHeader(r, size)
	if err != nil {
		return Array{}, err
	}
	dt, order, err := parseDescr(h.descr)
	if err != nil {
		return Array{}, err
	}
	if h.fortran && len(h.shape) > 1 {
		return Array{}, errors.New("Fortran-ordered arrays are not supported; save it with numpy.ascontiguousarray")
	}
	n, err := b.claim(h.shape, dt, size-h.size)
	if err != nil {
		return Array{}, err
	}
	data, err := decodeFrom(r, dt, order, n)
	if err != nil {
		return Array{}, fmt.Errorf("shape %v of %s: %w", h.shape, dt.name, err)
	}
	var one [1]byte
	if _, err := io.ReadFull(r, one[:]); err != io.EOF {
		if err == nil {
			err = errors.New("more bytes than the entry declares")
		}
		return Array{}, fmt.Errorf("after the data: %w", err)
	}
	shape := make([]int, len(h.shape))
	for i, d := range h.shape {
		shape[i] = int(d)
	}
	return Array{Shape: shape, Data: data}, nil
}

// chunk is the size of the buffer arrays are decoded through.
const chunk = 64 << 10

// decodeFrom reads n elements of dt in byte order o.
func decodeFrom(r io.Reader, dt dtype, o binary.ByteOrder, n int) (any, error) {
	switch dt.name {
	case "bool":
		return readInto(r, n, 1, func(p []byte) bool { return p[0] != 0 })
	case "uint8":
		out := make([]uint8, n)
		if got, err := io.ReadFull(r, out); err != nil {
			return nil, fmt.Errorf("data truncated: %d of %d bytes: %w", got, n, eof(err))
		}
		return out, nil
	case "int8":
		return readInto(r, n, 1, func(p []byte) int8 { return int8(p[0]) })
	case "uint16":
		return readInto(r, n, 2, o.Uint16)
	case "int16":
		return readInto(r, n, 2, func(p []byte) int16 { return int16(o.Uint16(p)) })
	case "uint32":
		return readInto(r, n, 4, o.Uint32)
	case "int32":
		return readInto(r, n, 4, func(p []byte) int32 { return int32(o.Uint32(p)) })
	case "uint64":
		return readInto(r, n, 8, o.Uint64)
	case "int64":
		return readInto(r, n, 8, func(p []byte) int64 { return int64(o.Uint64(p)) })
	case "float16":
		return readInto(r, n, 2, func(p []byte) float16.Float16 { return float16.Frombits(o.Uint16(p)) })
	case "float32":
		return readInto(r, n, 4, func(p []byte) float32 { return math.Float32frombits(o.Uint32(p)) })
	default: // float64
		return readInto(r, n, 8, func(p []byte) float64 { return math.Float64frombits(o.Uint64(p)) })
	}
}

// readInto decodes n elements of size bytes each into a new slice,
// reading through a buffer of at most chunk bytes.
func readInto[T any](r io.Reader, n, size int, get func([]byte) T) ([]T, error) {
	out := make([]T, n)
	buf := make([]byte, min(n, chunk/size)*size)
	for i := 0; i < n; {
		m := min(n-i, chunk/size)
		if got, err := io.ReadFull(r, buf[:m*size]); err != nil {
			return nil, fmt.Errorf("data truncated: %d of %d bytes: %w", i*size+got, n*size, eof(err))
		}
		for j := range m {
			out[i+j] = get(buf[j*size:])
		}
		i += m
	}
	return out, nil
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
