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
//
// The large raw_data of the main graph's initializers of a model in one
// file stay in that file the same way (see inline.go), and Save writes
// them back inline, copied from it: the model's structure is held, not
// its weights.
func OpenFile(path string) (*Model, error) {
	src := DirSource(filepath.Dir(path))
	m, ok, err := openInline(src, filepath.Base(path), path)
	if err != nil {
		return nil, err
	}
	if !ok {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return OpenSource(data, path, src)
	}
	return m, m.attach(src)
}

// OpenSource is OpenFile for a serialized model whose external data
// files src holds; name identifies it in errors. An error naming a
// tensor's location wraps ErrInvalid when the reference itself is wrong
// (a location out of the model's directory, bytes past the file's end),
// and the source's error when the file cannot be read.
func OpenSource(data []byte, name string, src Source) (*Model, error) {
	m, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	return m, m.attach(src)
}

// attach makes src the source of m's external tensors, checking each
// (those left in the model's own file were checked by openInline) and
// reading in those under streamMin bytes.
func (m *Model) attach(src Source) error {
	name := m.Name
	m.src = &spillSource{Source: src}
	var firstErr error
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL || m.inline[tp] {
			return
		}
		loc, offset, length, err := externalRange(tp, src)
		if err == nil {
			err = checkExternalSize(tp, loc, length)
		}
		if err == nil && length < streamMin {
			var raw []byte
			if raw, err = readRange(src, loc, offset, length); err == nil {
				tp.RawData, tp.ExternalData, tp.DataLocation = raw, nil, nil
			}
		}
		if err != nil {
			firstErr = fmt.Errorf("%s: tensor %q: %w", name, tp.GetName(), err)
			return
		}
		m.markExternal(tp, loc)
	})
	if firstErr != nil {
		return firstErr
	}
	return m.validate()
}

// checkExternalSize checks that an external tensor's bytes are as many
// as its dims and type take, so that reading it later cannot fail.
func checkExternalSize(tp *onnxpb.TensorProto, loc string, length int64) error {
	n, err := CountElements(tp.GetDims())
	if err != nil {
		return invalidf("%w", err)
	}
	bits := int64(ElemBits(DataType(tp.GetDataType())))
	if bits == 0 {
		return nil // a type passed through, never decoded
	}
	if want := (int64(n)*bits + 7) / 8; length != want {
		return invalidf("external data %q holds %d bytes for it, but %s %v takes %d", loc, length, DataType(tp.GetDataType()), tp.GetDims(), want)
	}
	return nil
}

// Streamed reports whether some tensors still live in the external files
// of the model's source.
func (m *Model) Streamed() bool {
	return m.src != nil && (m.HasExternalData() || m.hasLazyInline())
}

// ExternalDir is the local directory a streamed model's external tensors
// are read from ("" for a model held in memory). A model streamed from
// object storage is copied there first (Source.Dir): ONNX Runtime reads
// external data only from files.
func (m *Model) ExternalDir() (string, error) {
	if m.src == nil {
		return "", nil
	}
	return m.src.Dir()
}

// HeaderBytes serializes the model with its streamed tensors left as
// references to the files of ExternalDir: what ONNX Runtime loads with
// that directory as its external data folder (ort.Options.ExternalDataDir).
// Spilled tensors (Spill) are not there: they are read back inline.
func (m *Model) HeaderBytes() ([]byte, error) {
	mp, err := m.withSpilledInline()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.label(), err)
	}
	if n := proto.Size(mp); n > maxProtoSize {
		return nil, fmt.Errorf("%s: model is %d bytes without its external data, past protobuf's 2 GiB limit", m.label(), n)
	}
	return proto.Marshal(mp)
}

// copyStreamed appends a streamed tensor's bytes, copied from its source
// in one stream, to ext, and points tp at the copy.
func copyStreamed(tp *onnxpb.TensorProto, src Source, ext *ExternalWriter) error {
	loc, offset, length, err := externalRange(tp, src)
	if err != nil {
		return err
	}
	return ext.Write(tp, length, func(w io.Writer) error {
		r, err := src.ReadRange(loc, offset, length)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
}

// readStreamedTensor reads a tensor still in its external file. Numbers
// whose raw layout is the machine's (little-endian, fixed size) are read
// straight into the tensor's memory: no second copy, no decoding.
func readStreamedTensor(tp *onnxpb.TensorProto, src Source) (*Tensor, error) {
	loc, offset, length, err := externalRange(tp, src)
	if err != nil {
		return nil, err
	}
	if t, buf, ok := allocRaw(tp, length); ok {
		if err := readInto(src, loc, offset, buf); err != nil {
			return nil, err
		}
		return t, nil
	}
	raw, err := readRange(src, loc, offset, length)
	if err != nil {
		return nil, err
	}
	c := &onnxpb.TensorProto{Name: tp.Name, Dims: tp.Dims, DataType: tp.DataType, RawData: raw}
	return TensorFromProto(c)
}

// HasExternalData reports whether some tensor of the model keeps its data
// in an external file (to be read with OpenFile or OpenSource); the
// tensors of a model in one file that OpenFile left there are not.
func (m *Model) HasExternalData() bool {
	found := false
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		found = found || tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL && !m.inline[tp]
	})
	return found
}

// StreamedBytes is the bytes of the tensors still in external data, and
// the largest of them: what streaming the model takes in memory at once
// is the largest, not the total.
func (m *Model) StreamedBytes() (total, largest int64) {
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			return
		}
		n, err := CountElements(tp.GetDims())
		if err != nil {
			return
		}
		b := (int64(n)*int64(ElemBits(DataType(tp.GetDataType()))) + 7) / 8
		total += b
		largest = max(largest, b)
	})
	return total, largest
}

// Streamed reports whether the weight's data is still in its external
// file (OpenFile, OpenSource): OpenRaw reads it there.
func (w *Weight) Streamed() bool {
	return w.tp != nil && w.src != nil && w.tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// OpenRaw opens the raw bytes of a weight still in its external file
// (Streamed), checked against its dims and type when the model was
// opened, to be read in one pass. Close it.
func (w *Weight) OpenRaw() (io.ReadCloser, error) {
	if !w.Streamed() {
		return nil, fmt.Errorf("weight %q is not in an external data file", w.Name)
	}
	loc, offset, length, err := externalRange(w.tp, w.src)
	if err != nil {
		return nil, fmt.Errorf("weight %q: %w", w.Name, err)
	}
	r, err := w.src.ReadRange(loc, offset, length)
	if err != nil {
		return nil, fmt.Errorf("weight %q: external data %q: %w", w.Name, loc, err)
	}
	return r, nil
}
