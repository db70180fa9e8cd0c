package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// streamMin is the size from which OpenFile leaves a tensor in its
// external file: smaller ones (biases, norms, shapes) are read at once,
// so code that reads small constants directly sees them as always.
const streamMin = 1 << 16

// OpenFile reads a model file for streaming: the tensors it keeps in
// external data files stay there, and are read one at a time when asked
// for (Weight.Tensor) and copied file to file when saved (Save), so a
// model of any size is transformed in the memory of the tensors it
// changes. Every external reference is checked (location inside the
// model's directory, bytes within the file) before OpenFile returns.
// Tensors under 64 KiB are read at once.
func OpenFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	m.dir = filepath.Dir(path)
	files := map[string]*os.File{}
	defer closeAll(files)
	var firstErr error
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		f, offset, length, loc, err := externalRange(tp, m.dir, files)
		if err == nil && length < streamMin {
			raw := make([]byte, length)
			if _, err = f.ReadAt(raw, offset); err == nil {
				tp.RawData, tp.ExternalData, tp.DataLocation = raw, nil, nil
			}
		}
		if err != nil {
			firstErr = fmt.Errorf("%s: tensor %q: %w", path, tp.GetName(), err)
			return
		}
		if m.external == nil {
			m.external = map[*onnxpb.TensorProto]string{}
		}
		m.external[tp] = loc
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return m, nil
}

func closeAll(files map[string]*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Streamed reports whether some tensors still live in the external files
// of the model's directory (ExternalDir).
func (m *Model) Streamed() bool {
	if m.dir == "" {
		return false
	}
	found := false
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		found = found || tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
	})
	return found
}

// ExternalDir is the directory a streamed model's external tensors are
// read from ("" for a model held in memory).
func (m *Model) ExternalDir() string { return m.dir }

// HeaderBytes serializes the model with its streamed tensors left as
// references to the files of ExternalDir: what ONNX Runtime loads with
// that directory as its external data folder (ort.Options.ExternalDataDir).
func (m *Model) HeaderBytes() ([]byte, error) {
	if n := proto.Size(m.Proto); n > maxProtoSize {
		return nil, fmt.Errorf("%s: model is %d bytes without its external data, past protobuf's 2 GiB limit", m.label(), n)
	}
	return proto.Marshal(m.Proto)
}

// readStreamed reads the data of a tensor still in its external file.
func readStreamed(tp *onnxpb.TensorProto, dir string) ([]byte, error) {
	files := map[string]*os.File{}
	defer closeAll(files)
	f, offset, length, _, err := externalRange(tp, dir, files)
	if err != nil {
		return nil, err
	}
	raw := make([]byte, length)
	if _, err := f.ReadAt(raw, offset); err != nil {
		return nil, err
	}
	return raw, nil
}

// copyStreamed appends a streamed tensor's bytes, copied from its file a
// buffer at a time, to ext, and points tp at the copy.
func copyStreamed(tp *onnxpb.TensorProto, dir string, ext *ExternalWriter, files map[string]*os.File) error {
	f, offset, length, _, err := externalRange(tp, dir, files)
	if err != nil {
		return err
	}
	return ext.Write(tp, length, func(w io.Writer) error {
		_, err := io.Copy(w, io.NewSectionReader(f, offset, length))
		return err
	})
}

// readStreamedTensor decodes a tensor still in its external file.
func readStreamedTensor(tp *onnxpb.TensorProto, dir string) (*Tensor, error) {
	raw, err := readStreamed(tp, dir)
	if err != nil {
		return nil, err
	}
	c := &onnxpb.TensorProto{Name: tp.Name, Dims: tp.Dims, DataType: tp.DataType, RawData: raw}
	return TensorFromProto(c)
}
