package onnx

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// Layout of external data, as the onnx Python package (onnx_ir) writes
// it: tensors of at least externalAlignMin bytes start on externalAlign
// boundaries (the allocation granularity of mmap on every OS, Windows'
// 64 KiB included), so ONNX Runtime can map them instead of copying; the
// gap is zeros.
const (
	externalAlign    = 65536
	externalAlignMin = 1 << 20
)

// ExternalWriter appends tensor data to one external data file in the
// order tensors are written, and points each tensor at its bytes. It
// never holds more than the tensor being written, so a model of any size
// can be written tensor by tensor.
type ExternalWriter struct {
	w        io.Writer
	location string
	offset   int64
}

// NewExternalWriter writes to w, the file the tensors will name as
// location: a path relative to the model's directory (the only kind ONNX
// and ONNX Runtime accept), with no "..".
func NewExternalWriter(w io.Writer, location string) (*ExternalWriter, error) {
	if err := checkLocation(location); err != nil {
		return nil, err
	}
	return &ExternalWriter{w: w, location: filepath.ToSlash(location)}, nil
}

// checkLocation is CleanLocation's rule, stricter: a location kompress
// writes has no ".." at all.
func checkLocation(loc string) error {
	if _, err := CleanLocation(loc); err != nil || strings.Contains(filepath.ToSlash(loc), "..") {
		return fmt.Errorf("external data location %q must be a file name relative to the model's directory", loc)
	}
	return nil
}

// Location is the file name tensors refer to.
func (e *ExternalWriter) Location() string { return e.location }

// Size is the number of bytes written so far.
func (e *ExternalWriter) Size() int64 { return e.offset }

// Write appends tensor tp's length bytes, produced by fill, and makes tp
// refer to them (its raw_data and typed fields are cleared). fill must
// write exactly length bytes.
func (e *ExternalWriter) Write(tp *onnxpb.TensorProto, length int64, fill func(io.Writer) error) error {
	if length >= externalAlignMin {
		if pad := (externalAlign - e.offset%externalAlign) % externalAlign; pad > 0 {
			if _, err := e.w.Write(make([]byte, pad)); err != nil {
				return err
			}
			e.offset += pad
		}
	}
	cw := &countWriter{w: e.w}
	if err := fill(cw); err != nil {
		return fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	if cw.n != length {
		return fmt.Errorf("tensor %q: wrote %d bytes of external data, expected %d", tp.GetName(), cw.n, length)
	}
	setExternal(tp, e.location, e.offset, length)
	e.offset += length
	return nil
}

// WriteRaw appends raw, the tensor's little-endian data.
func (e *ExternalWriter) WriteRaw(tp *onnxpb.TensorProto, raw []byte) error {
	return e.Write(tp, int64(len(raw)), func(w io.Writer) error {
		_, err := w.Write(raw)
		return err
	})
}

// setExternal makes tp refer to length bytes at offset of location.
func setExternal(tp *onnxpb.TensorProto, location string, offset, length int64) {
	tp.RawData = nil
	tp.FloatData, tp.Int32Data, tp.Int64Data, tp.DoubleData, tp.Uint64Data = nil, nil, nil, nil, nil
	tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	tp.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: proto.String("location"), Value: proto.String(location)},
		{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(offset, 10))},
		{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(length, 10))},
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
