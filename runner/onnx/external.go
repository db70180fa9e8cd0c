package onnx

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// readExternal moves the data of every EXTERNAL tensor into raw_data. Each
// tensor is read on its own from the file (ReadAt), so a model of any size
// takes its weights' bytes in memory once, never the data file besides.
func (m *Model) readExternal(dir string) error {
	files := map[string]*os.File{}
	defer closeAll(files)
	var firstErr error
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		raw, loc, err := readExternalTensor(tp, dir, files)
		if err != nil {
			firstErr = fmt.Errorf("tensor %q: %w", tp.GetName(), err)
			return
		}
		tp.RawData = raw
		tp.ExternalData, tp.DataLocation = nil, nil
		if m.external == nil {
			m.external = map[*onnxpb.TensorProto]string{}
		}
		m.external[tp] = loc
	})
	return firstErr
}

func readExternalTensor(tp *onnxpb.TensorProto, dir string, files map[string]*os.File) ([]byte, string, error) {
	f, offset, length, loc, err := externalRange(tp, dir, files)
	if err != nil {
		return nil, loc, err
	}
	raw := make([]byte, length)
	if _, err := f.ReadAt(raw, offset); err != nil {
		return nil, loc, fmt.Errorf("external data %q: %w", loc, err)
	}
	return raw, loc, nil
}

// externalRange opens (once per file, kept in files) the file an external
// tensor refers to and checks its offset and length against the file.
func externalRange(tp *onnxpb.TensorProto, dir string, files map[string]*os.File) (*os.File, int64, int64, string, error) {
	loc := externalKey(tp, "location")
	if loc == "" {
		return nil, 0, 0, "", invalidf("external_data has no location")
	}
	// ONNX requires locations relative to the model's directory; refusing
	// anything else keeps a model from reading arbitrary files.
	clean := filepath.Clean(filepath.FromSlash(loc))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, 0, 0, loc, invalidf("external data location %q must be a relative path inside the model's directory", loc)
	}
	f, ok := files[clean]
	if !ok {
		var err error
		if f, err = os.Open(filepath.Join(dir, clean)); err != nil {
			return nil, 0, 0, loc, fmt.Errorf("external data: %w", err)
		}
		files[clean] = f
	}
	st, err := f.Stat()
	if err != nil {
		return nil, 0, 0, loc, fmt.Errorf("external data: %w", err)
	}
	offset, err := externalInt(tp, "offset", 0)
	if err != nil {
		return nil, 0, 0, loc, err
	}
	length, err := externalInt(tp, "length", st.Size()-offset)
	if err != nil {
		return nil, 0, 0, loc, err
	}
	if size := st.Size(); offset < 0 || length < 0 || offset > size || length > size-offset { // no overflow
		return nil, 0, 0, loc, invalidf("external data %q: offset %d + length %d is past the file's %d bytes", loc, offset, length, size)
	}
	return f, offset, length, loc, nil
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
	if m.dir != "" && sameFile(filepath.Join(filepath.Dir(path), file), m.dir, m) {
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
	files := map[string]*os.File{}
	defer closeAll(files)
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if writeErr != nil || DataType(tp.GetDataType()) == String {
			return
		}
		if tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			if m.dir == "" {
				return // a reference the caller made (LoadHeader): kept as is
			}
			src := tp.ExternalData
			if err := copyStreamed(tp, m.dir, ext, files); err != nil {
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
// tensors are read from.
func sameFile(target, dir string, m *Model) bool {
	t, err := filepath.Abs(target)
	if err != nil {
		return false
	}
	same := false
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if same || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		src, err := filepath.Abs(filepath.Join(dir, filepath.FromSlash(externalKey(tp, "location"))))
		same = err == nil && src == t
	})
	return same
}
