package onnx

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// readExternal moves the data of every EXTERNAL tensor into raw_data. Each
// tensor is read on its own from its file, so a model of any size takes
// its weights' bytes in memory once, never the data file besides.
func (m *Model) readExternal(src Source) error {
	var firstErr error
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		loc, err := readIn(tp, src)
		if err != nil {
			firstErr = err
			return
		}
		m.markExternal(tp, loc)
	})
	return firstErr
}

// readIn moves an external tensor's bytes from its file into raw_data
// and returns the file's location.
func readIn(tp *onnxpb.TensorProto, src Source) (string, error) {
	loc, offset, length, err := externalRange(tp, src)
	var raw []byte
	if err == nil {
		raw, err = readRange(src, loc, offset, length)
	}
	if err != nil {
		return loc, fmt.Errorf("tensor %q: %w", tp.GetName(), err)
	}
	tp.RawData, tp.ExternalData, tp.DataLocation = raw, nil, nil
	return loc, nil
}

func (m *Model) markExternal(tp *onnxpb.TensorProto, loc string) {
	if m.external == nil {
		m.external = map[*onnxpb.TensorProto]string{}
	}
	m.external[tp] = loc
}

// readRange reads length bytes of loc from offset.
func readRange(src Source, loc string, offset, length int64) ([]byte, error) {
	raw := make([]byte, length)
	if err := readInto(src, loc, offset, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// readInto fills buf with the bytes of loc from offset.
func readInto(src Source, loc string, offset int64, buf []byte) error {
	r, err := src.ReadRange(loc, offset, int64(len(buf)))
	if err != nil {
		return fmt.Errorf("external data %q: %w", loc, err)
	}
	defer r.Close()
	if _, err := io.ReadFull(r, buf); err != nil {
		return fmt.Errorf("external data %q: %w", loc, err)
	}
	return nil
}

// externalRange checks an external tensor's reference against its file:
// a location inside the model's directory (ONNX's rule, which also keeps
// a model from reading arbitrary files), and offset and length within
// the file. It returns the cleaned location.
func externalRange(tp *onnxpb.TensorProto, src Source) (string, int64, int64, error) {
	loc, err := CleanLocation(externalKey(tp, "location"))
	if err != nil {
		return "", 0, 0, err
	}
	size, err := src.Size(loc)
	if err != nil {
		return loc, 0, 0, fmt.Errorf("external data %q: %w", loc, err)
	}
	offset, err := externalInt(tp, "offset", 0)
	if err != nil {
		return loc, 0, 0, err
	}
	length, err := externalInt(tp, "length", size-offset)
	if err != nil {
		return loc, 0, 0, err
	}
	if offset < 0 || length < 0 || offset > size || length > size-offset { // no overflow
		return loc, 0, 0, invalidf("external data %q: offset %d + length %d is past the file's %d bytes", loc, offset, length, size)
	}
	return loc, offset, length, nil
}

func externalInt(tp *onnxpb.TensorProto, key string, def int64) (int64, error) {
	s := externalKey(tp, key)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, invalidf("external_data %s %q is not an integer", key, s)
	}
	return v, nil
}

// saveExternal writes tensors of at least ExternalMinBytes to the side file
// and the rest of the model to path. The tensors are moved out only for the
// duration of the write, and streamed to the side file one at a time.
func (m *Model) saveExternal(path string, opts SaveOptions) (saved []SavedFile, err error) {
	file := opts.ExternalFile
	if file == "" {
		file = filepath.Base(path) + ".data"
	}
	if err := checkLocation(file); err != nil {
		return nil, fmt.Errorf("SaveOptions.ExternalFile: %w", err)
	}
	minBytes := opts.ExternalMinBytes
	if minBytes <= 0 {
		minBytes = 1024
	}
	data, err := createHashed(filepath.Join(filepath.Dir(path), file))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			data.abort()
		}
	}()
	ext, err := NewExternalWriter(data, file)
	if err != nil {
		return nil, err
	}
	if sameFile(filepath.Join(filepath.Dir(path), file), m) {
		return nil, fmt.Errorf("%s: saving over the external data file the model streams its weights from", m.label())
	}
	type moved struct {
		tp  *onnxpb.TensorProto
		raw []byte
		ext []*onnxpb.StringStringEntryProto // a streamed tensor's source
	}
	var (
		out      []moved
		writeErr error
	)
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if writeErr != nil || DataType(tp.GetDataType()) == String {
			return
		}
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			if m.src == nil {
				return // a reference the caller made (LoadHeader): kept as is
			}
			src := tp.ExternalData
			if err := copyStreamed(tp, m.src, ext); err != nil {
				writeErr = fmt.Errorf("tensor %q: %w", tp.GetName(), err)
				return
			}
			out = append(out, moved{tp: tp, ext: src})
			return
		}
		if tp.RawData == nil && typedBytes(tp) >= minBytes {
			// Typed fields (float_data, ...) have no external form: switch
			// the tensor to raw_data for good (same values).
			t, err := TensorFromProto(tp)
			if err == nil {
				err = SetProtoData(tp, t)
			}
			if err != nil {
				writeErr = err
				return
			}
		}
		if len(tp.RawData) < minBytes {
			return
		}
		raw := tp.RawData
		if err := ext.WriteRaw(tp, raw); err != nil {
			writeErr = err
			return
		}
		out = append(out, moved{tp: tp, raw: raw})
	})
	defer func() {
		for _, mv := range out {
			if mv.ext != nil {
				mv.tp.ExternalData = mv.ext // still streamed from its source
				continue
			}
			mv.tp.RawData = mv.raw
			mv.tp.ExternalData, mv.tp.DataLocation = nil, nil
		}
	}()
	if writeErr != nil {
		return nil, fmt.Errorf("%s: %w", m.label(), writeErr)
	}
	b, err := proto.Marshal(m.Proto)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.label(), err)
	}
	if len(b) > maxProtoSize {
		return nil, fmt.Errorf("%s: even with tensor data external the model is %d bytes, past protobuf's 2 GiB limit", m.label(), len(b))
	}
	dataFile, err := data.close()
	if err != nil {
		return nil, err
	}
	modelFile, err := writeFile(path, b)
	if err != nil {
		return nil, err
	}
	return []SavedFile{modelFile, dataFile}, nil
}

// typedBytes estimates the raw size of a tensor held in typed fields.
func typedBytes(tp *onnxpb.TensorProto) int {
	return 4*len(tp.GetFloatData()) + 4*len(tp.GetInt32Data()) + 8*len(tp.GetInt64Data()) +
		8*len(tp.GetDoubleData()) + 8*len(tp.GetUint64Data())
}

// sameFile reports whether target is one of the files m's streamed
// tensors are read from (a local folder's only: other sources are not
// local files).
func sameFile(target string, m *Model) bool {
	ds, ok := unspilled(m.src).(*dirSource)
	if !ok {
		return false
	}
	t, err := filepath.Abs(target)
	if err != nil {
		return false
	}
	same := false
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if same || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		src, err := filepath.Abs(ds.path(externalKey(tp, "location")))
		same = err == nil && src == t
	})
	return same
}
