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

// readExternal moves the data of every EXTERNAL tensor into raw_data.
func (m *Model) readExternal(dir string) error {
	files := map[string][]byte{}
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

func readExternalTensor(tp *onnxpb.TensorProto, dir string, files map[string][]byte) ([]byte, string, error) {
	loc := externalKey(tp, "location")
	if loc == "" {
		return nil, "", invalidf("external_data has no location")
	}
	// ONNX requires locations relative to the model's directory; refusing
	// anything else keeps a model from reading arbitrary files.
	clean := filepath.Clean(filepath.FromSlash(loc))
	if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, loc, invalidf("external data location %q must be a relative path inside the model's directory", loc)
	}
	data, ok := files[clean]
	if !ok {
		var err error
		data, err = os.ReadFile(filepath.Join(dir, clean))
		if err != nil {
			return nil, loc, fmt.Errorf("external data: %w", err)
		}
		files[clean] = data
	}
	offset, err := externalInt(tp, "offset", 0)
	if err != nil {
		return nil, loc, err
	}
	length, err := externalInt(tp, "length", int64(len(data))-offset)
	if err != nil {
		return nil, loc, err
	}
	if offset < 0 || length < 0 || offset > int64(len(data)) || length > int64(len(data))-offset { // no overflow
		return nil, loc, invalidf("external data %q: offset %d + length %d is past the file's %d bytes", loc, offset, length, len(data))
	}
	return append([]byte{}, data[offset:offset+length]...), loc, nil
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
// duration of the write.
func (m *Model) saveExternal(path string, opts SaveOptions) error {
	file := opts.ExternalFile
	if file == "" {
		file = filepath.Base(path) + ".data"
	}
	if filepath.IsAbs(file) || strings.Contains(filepath.ToSlash(file), "..") {
		return fmt.Errorf("SaveOptions.ExternalFile %q must be a file name relative to the model's directory", file)
	}
	minBytes := opts.ExternalMinBytes
	if minBytes <= 0 {
		minBytes = 1024
	}
	type moved struct {
		tp  *onnxpb.TensorProto
		raw []byte
	}
	var (
		out     []moved
		data    []byte
		convErr error
	)
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if convErr != nil || DataType(tp.GetDataType()) == String || tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
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
				convErr = err
				return
			}
		}
		if len(tp.RawData) < minBytes {
			return
		}
		// Big tensors start on 64 KiB boundaries so ONNX Runtime can map
		// them, as the onnx Python package does.
		if len(tp.RawData) >= 1<<20 {
			data = append(data, make([]byte, (65536-len(data)%65536)%65536)...)
		}
		raw, offset := tp.RawData, len(data)
		data = append(data, raw...)
		out = append(out, moved{tp, raw})
		tp.RawData = nil
		tp.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		tp.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(filepath.ToSlash(file))},
			{Key: proto.String("offset"), Value: proto.String(strconv.Itoa(offset))},
			{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(raw)))},
		}
	})
	defer func() {
		for _, mv := range out {
			mv.tp.RawData = mv.raw
			mv.tp.ExternalData, mv.tp.DataLocation = nil, nil
		}
	}()
	if convErr != nil {
		return fmt.Errorf("%s: %w", m.label(), convErr)
	}
	b, err := proto.Marshal(m.Proto)
	if err != nil {
		return fmt.Errorf("%s: %w", m.label(), err)
	}
	if len(b) > maxProtoSize {
		return fmt.Errorf("%s: even with tensor data external the model is %d bytes, past protobuf's 2 GiB limit", m.label(), len(b))
	}
	if err := os.WriteFile(filepath.Join(filepath.Dir(path), file), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// typedBytes estimates the raw size of a tensor held in typed fields.
func typedBytes(tp *onnxpb.TensorProto) int {
	return 4*len(tp.GetFloatData()) + 4*len(tp.GetInt32Data()) + 8*len(tp.GetInt64Data()) +
		8*len(tp.GetDoubleData()) + 8*len(tp.GetUint64Data())
}
