package onnx

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// A model in one file is opened like one with external data: the
// raw_data of each initializer of its main graph of streamMin bytes or
// more is a range of the .onnx file, left there (the tensor points at it
// as external data, the model file its location) and read, copied or
// handed to ONNX Runtime as any streamed tensor. Saved without external
// data, the model is written back inline, those ranges copied from the
// file (writeInline): the bytes are the ones proto.Marshal gives.

// Field numbers of onnx.proto on the path to an initializer's raw_data.
const (
	fieldModelGraph       = 7
	fieldGraphInitializer = 5
	fieldTensorSegment    = 3
	fieldTensorRawData    = 9
	fieldTensorExternal   = 13
	fieldTensorLocation   = 14
)

// errNotStripped says a model's layout is one stripping does not handle
// (a group, a graph given twice): it is then read whole, as before.
var errNotStripped = errors.New("layout not streamed")

// inlineRaw is where the raw_data of the main graph's index-th
// initializer is in the model file.
type inlineRaw struct {
	index          int
	offset, length int64
}

// stripModel reads a serialized ModelProto and returns it without the
// large raw_data of its main graph's initializers, and where they are.
func stripModel(c *wireCursor) ([]byte, []inlineRaw, error) {
	var (
		out    []byte
		raws   []inlineRaw
		graphs int
	)
	for c.off < c.size {
		num, typ, err := c.tag()
		if err != nil {
			return nil, nil, err
		}
		if num != fieldModelGraph || typ != protowire.BytesType {
			if out, err = c.copyField(out, num, typ, c.size); err != nil {
				return nil, nil, err
			}
			continue
		}
		if graphs++; graphs > 1 {
			return nil, nil, errNotStripped // protobuf merges them: read whole
		}
		n, err := c.length(c.size)
		if err != nil {
			return nil, nil, err
		}
		g, r, err := stripGraph(c, c.off+n)
		if err != nil {
			return nil, nil, err
		}
		out = protowire.AppendBytes(protowire.AppendTag(out, num, typ), g)
		raws = r
	}
	return out, raws, nil
}

// stripGraph strips the GraphProto that ends at end.
func stripGraph(c *wireCursor, end int64) ([]byte, []inlineRaw, error) {
	var (
		out  []byte
		raws []inlineRaw
		init int
	)
	for c.off < end {
		num, typ, err := c.tag()
		if err != nil {
			return nil, nil, err
		}
		if num != fieldGraphInitializer || typ != protowire.BytesType {
			if out, err = c.copyField(out, num, typ, end); err != nil {
				return nil, nil, err
			}
			continue
		}
		n, err := c.length(end)
		if err != nil {
			return nil, nil, err
		}
		t, raw, err := stripTensor(c, c.off+n)
		if err != nil {
			return nil, nil, err
		}
		if raw != nil {
			raw.index = init
			raws = append(raws, *raw)
		}
		init++
		out = protowire.AppendBytes(protowire.AppendTag(out, num, typ), t)
	}
	if c.off != end {
		return nil, nil, errors.New("a graph runs past its model")
	}
	return out, raws, nil
}

// stripTensor strips the TensorProto that ends at end of its raw_data
// if that is large; a tensor that also names external data, a data
// location or a segment, or gives raw_data twice, is kept whole.
func stripTensor(c *wireCursor, end int64) ([]byte, *inlineRaw, error) {
	start := c.off
	var (
		out  []byte
		raw  *inlineRaw
		keep bool
	)
	for c.off < end {
		num, typ, err := c.tag()
		if err != nil {
			return nil, nil, err
		}
		switch {
		case num == fieldTensorRawData && typ == protowire.BytesType && raw == nil:
			n, err := c.length(end)
			if err != nil {
				return nil, nil, err
			}
			if n < streamMin {
				b, err := c.bytes(n)
				if err != nil {
					return nil, nil, err
				}
				out = protowire.AppendBytes(protowire.AppendTag(out, num, typ), b)
				continue
			}
			raw = &inlineRaw{offset: c.off, length: n}
			if err := c.skip(n); err != nil {
				return nil, nil, err
			}
			continue
		case num == fieldTensorRawData, num == fieldTensorExternal, num == fieldTensorLocation, num == fieldTensorSegment:
			keep = true
		}
		if out, err = c.copyField(out, num, typ, end); err != nil {
			return nil, nil, err
		}
	}
	if c.off != end {
		return nil, nil, errors.New("a tensor runs past its graph")
	}
	if !keep || raw == nil {
		return out, raw, nil
	}
	// Read whole, as it is: rare enough not to be streamed.
	if err := c.seek(start); err != nil {
		return nil, nil, err
	}
	b, err := c.bytes(end - start)
	return b, nil, err
}

// tag reads a field's number and wire type.
func (c *wireCursor) tag() (protowire.Number, protowire.Type, error) {
	v, err := c.varint()
	if err != nil {
		return 0, 0, err
	}
	num, typ := protowire.DecodeTag(v)
	if num < protowire.MinValidNumber {
		return 0, 0, errors.New("a field number is not valid")
	}
	return num, typ, nil
}

// copyField appends the field whose tag was just read, value and all.
func (c *wireCursor) copyField(out []byte, num protowire.Number, typ protowire.Type, end int64) ([]byte, error) {
	out = protowire.AppendTag(out, num, typ)
	switch typ {
	case protowire.VarintType:
		v, err := c.varint()
		return protowire.AppendVarint(out, v), err
	case protowire.Fixed32Type, protowire.Fixed64Type:
		n := int64(4)
		if typ == protowire.Fixed64Type {
			n = 8
		}
		if n > end-c.off {
			return nil, errors.New("a number runs past its message")
		}
		b, err := c.bytes(n)
		return append(out, b...), err
	case protowire.BytesType:
		n, err := c.length(end)
		if err != nil {
			return nil, err
		}
		b, err := c.bytes(n)
		return protowire.AppendBytes(out, b), err
	}
	return nil, errNotStripped // groups: not in onnx.proto
}

// openInline reads the model file loc of src, its large initializers
// left in it (see above). ok is false when the file's layout is not one
// it streams: read it whole then.
func openInline(src Source, loc, name string) (m *Model, ok bool, err error) {
	c, err := newWireCursor(src, loc)
	if err != nil {
		return nil, false, err
	}
	defer c.close()
	stripped, raws, err := stripModel(c)
	if errors.Is(err, errNotStripped) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, invalidf("%s: not an ONNX model (protobuf ModelProto): %w", name, err)
	}
	if m, err = parse(stripped, name); err != nil {
		return nil, false, err
	}
	inits := m.Proto.GetGraph().GetInitializer()
	for _, r := range raws {
		if r.index >= len(inits) {
			return nil, false, errNotStripped // cannot happen: the parse counts the same fields
		}
		tp := inits[r.index]
		if err := checkInlineSize(tp, r.length); err != nil {
			return nil, false, fmt.Errorf("%s: tensor %q: %w", name, tp.GetName(), err)
		}
		tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		tp.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(loc)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(r.offset, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(r.length, 10))},
		}
		m.markInline(tp)
	}
	return m, true, nil
}

// checkInlineSize is checkExternalSize for raw_data left in the model
// file: as many bytes as the tensor's dims and type take.
func checkInlineSize(tp *onnxpb.TensorProto, length int64) error {
	n, err := CountElements(tp.GetDims())
	if err != nil {
		return invalidf("%w", err)
	}
	bits := int64(ElemBits(DataType(tp.GetDataType())))
	if bits == 0 {
		return nil // a type passed through, never decoded
	}
	if want := (int64(n)*bits + 7) / 8; length != want {
		return invalidf("raw_data holds %d bytes, but %s %v takes %d", length, DataType(tp.GetDataType()), tp.GetDims(), want)
	}
	return nil
}

func (m *Model) markInline(tp *onnxpb.TensorProto) {
	if m.inline == nil {
		m.inline = map[*onnxpb.TensorProto]bool{}
	}
	m.inline[tp] = true
}

// lazyInline reports whether tp's raw_data is still a range of the
// model's own file (not yet read, nor replaced).
func (m *Model) lazyInline(tp *onnxpb.TensorProto) bool {
	return m.inline[tp] && tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// OpenBytes is OpenFile for a model in one file already in memory (read
// from object storage, say): its large initializers are left in data,
// as ranges of it, so the model costs data and its structure, not data
// twice. ONNX Runtime reads those from a file: ExternalDir writes data
// to dir, once, as name's base name. A model with external data files
// is refused (ErrInvalid): open it with OpenSource.
func OpenBytes(data []byte, name, dir string) (*Model, error) {
	file := path.Base(filepath.ToSlash(name))
	if u, err := url.Parse(name); err == nil && u.Path != "" {
		file = path.Base(u.Path) // a URI's query is not the file's name
	}
	if file == "" || file == "." || file == "/" {
		file = "model.onnx"
	}
	src := &memSource{file: file, data: data, dir: dir}
	m, ok, err := openInline(src, file, name)
	if err != nil {
		return nil, err
	}
	if !ok {
		if m, err = Load(data); err != nil {
			return nil, err
		}
		m.Name = name
		return m, nil
	}
	var ext *onnxpb.TensorProto
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if ext == nil && tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL && !m.inline[tp] {
			ext = tp
		}
	})
	if ext != nil {
		return nil, invalidf("%s: tensor %q keeps its data in external file %q: open the model with OpenSource", name, ext.GetName(), externalKey(ext, "location"))
	}
	return m, m.attach(src)
}

// memSource is the Source of a model in memory: the one file it names
// is the model itself.
type memSource struct {
	file string
	data []byte
	dir  string

	once    sync.Once
	written error
}

func (s *memSource) Size(loc string) (int64, error) {
	if loc != s.file {
		return 0, fmt.Errorf("%q: %w", loc, fs.ErrNotExist)
	}
	return int64(len(s.data)), nil
}

func (s *memSource) ReadRange(loc string, offset, length int64) (io.ReadCloser, error) {
	if _, err := s.Size(loc); err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(s.data[offset : offset+length])), nil
}

// Dir writes the model to dir, once, for ONNX Runtime.
func (s *memSource) Dir() (string, error) {
	s.once.Do(func() {
		if s.written = os.MkdirAll(s.dir, 0o755); s.written == nil {
			s.written = os.WriteFile(filepath.Join(s.dir, s.file), s.data, 0o644)
		}
	})
	return s.dir, s.written
}
