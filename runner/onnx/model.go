package onnx

import (
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// maxProtoSize is the largest message protobuf can serialize: models past
// it must keep tensors in an external data file. A variable so tests can
// lower it.
var maxProtoSize = 1<<31 - 1

// Model is an ONNX model in memory. Every tensor's data is in the protobuf
// (external data is read in by LoadFile), so a Model can be edited and
// saved anywhere.
type Model struct {
	Proto *onnxpb.ModelProto
	// Name identifies the model in error messages (a file name or URI).
	Name string
	// external remembers tensors whose data came from an external file,
	// and that file's location, for Weights.
	external map[*onnxpb.TensorProto]string
	// names reserves every name in use, for UniqueName; built on first use.
	names map[string]bool
	// src holds the tensors OpenFile or OpenSource left in their
	// external files; nil when every tensor's data is in memory.
	src Source
	// inline marks the tensors whose raw_data OpenFile left in the model
	// file itself (inline.go): they are saved inline again.
	inline map[*onnxpb.TensorProto]bool
}

// Load parses a serialized model and checks every tensor in it (see
// validate): a model Load returns can be read tensor by tensor without
// an error, a panic or an allocation its bytes do not justify. A model
// whose tensors live in external data files must be loaded with LoadFile,
// from its directory. Every error wraps ErrInvalid.
func Load(data []byte) (*Model, error) {
	m, err := parse(data, "model")
	if err != nil {
		return nil, err
	}
	var ext *onnxpb.TensorProto
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if ext == nil && tp.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
			ext = tp
		}
	})
	if ext != nil {
		return nil, invalid(externalError{ext.GetName(), externalKey(ext, "location")})
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// LoadHeader parses a serialized model without reading its external
// data: tensors stored in external files keep their references (and no
// data), so the graph, its inputs and the tensors' types and shapes of a
// model of any size can be read in the memory of its structure. Its
// external tensors cannot be read nor the model saved inline.
func LoadHeader(data []byte) (*Model, error) {
	return parse(data, "model")
}

// LoadFile reads a model file and the external data files it refers to
// (paths relative to the model's directory), and checks every tensor as
// Load does, external ones against the bytes read from their file.
func LoadFile(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := parse(data, path)
	if err != nil {
		return nil, err
	}
	if err := m.readExternal(DirSource(filepath.Dir(path))); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func parse(data []byte, name string) (*Model, error) {
	var mp onnxpb.ModelProto
	if err := proto.Unmarshal(data, &mp); err != nil {
		return nil, invalidf("%s: not an ONNX model (protobuf ModelProto): %w", name, err)
	}
	if mp.GetGraph() == nil {
		return nil, invalidf("%s: not an ONNX model: ModelProto.graph is missing", name)
	}
	if mp.IrVersion == nil {
		return nil, invalidf("%s: not an ONNX model: ModelProto.ir_version is missing", name)
	}
	return &Model{Proto: &mp, Name: name}, nil
}

// Bytes serializes the model with every tensor inline. Models past the
// 2 GiB protobuf limit must be written with SaveFile.
func (m *Model) Bytes() ([]byte, error) {
	if m.streamsExternal() {
		return nil, fmt.Errorf("%s: weights are streamed from external data files: save the model with Save (or give ONNX Runtime HeaderBytes and ExternalDir)", m.label())
	}
	if m.hasLazyInline() {
		return m.inlineBytes()
	}
	if n := proto.Size(m.Proto); n > maxProtoSize {
		return nil, fmt.Errorf("%s: model is %d bytes, past protobuf's 2 GiB limit: save it with SaveFile, which moves weights to an external data file", m.label(), n)
	}
	return proto.Marshal(m.Proto)
}

// SaveOptions chooses where tensor data goes when saving to a file.
type SaveOptions struct {
	// ExternalData moves tensor data to a side file next to the model.
	// SaveFile does so anyway when the model would pass 2 GiB.
	ExternalData bool
	// ExternalFile is the side file's name, relative to the model's
	// directory; default: the model's file name plus ".data".
	ExternalFile string
	// ExternalMinBytes keeps tensors smaller than this inline; default 1024.
	ExternalMinBytes int
}

// ExternalThreshold is the size from which a model is written with its
// weights in an external data file (WantsExternalData), well under
// protobuf's 2 GiB limit: writing tensor by tensor never holds the
// serialized model besides the model itself.
const ExternalThreshold = 1 << 30

// WantsExternalData reports whether the model should be saved with its
// weights in an external data file: it was read with some (a user who
// brought model.onnx + model.onnx.data gets the same form back), or it
// is ExternalThreshold bytes or more.
func (m *Model) WantsExternalData() bool {
	return len(m.external) > 0 || m.streamsExternal() || m.inlineSize() >= ExternalThreshold
}

// streamsExternal reports whether some tensors are still in external data
// files of the model's source (not its own file: see inline.go).
func (m *Model) streamsExternal() bool {
	return m.src != nil && m.HasExternalData()
}

// SaveFile writes the model to path, and its external data file when
// opts ask for one or the model is too large to save inline. The Model in
// memory keeps its data inline either way.
func (m *Model) SaveFile(path string, opts SaveOptions) error {
	_, err := m.Save(path, opts)
	return err
}

// SavedFile is a file Save wrote, with the digest computed as it was
// written (the bytes are never read back).
type SavedFile struct {
	Path   string
	Size   int64
	SHA256 string // hex
}

// Save is SaveFile returning the files written: the model, then its
// external data file if any.
func (m *Model) Save(path string, opts SaveOptions) ([]SavedFile, error) {
	if m.src != nil && sameFile(path, m) {
		return nil, fmt.Errorf("%s: saving over the file the model streams its weights from", m.label())
	}
	if !opts.ExternalData && !m.streamsExternal() && m.hasLazyInline() && m.inlineSize() <= int64(maxProtoSize) {
		return m.saveInline(path)
	}
	if !opts.ExternalData && !m.streamsExternal() && proto.Size(m.Proto) <= maxProtoSize {
		b, err := proto.Marshal(m.Proto)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.label(), err)
		}
		f, err := writeFile(path, b)
		if err != nil {
			return nil, err
		}
		return []SavedFile{f}, nil
	}
	return m.saveExternal(path, opts)
}

func (m *Model) label() string {
	if m.Name == "" {
		return "model"
	}
	return m.Name
}

// Clone returns a deep copy.
func (m *Model) Clone() *Model {
	c := &Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto), Name: m.Name, src: m.src}
	if len(m.external) == 0 && len(m.inline) == 0 {
		return c
	}
	// Map the original tensors to their copies by walking both models in
	// the same order.
	var orig, copies []*onnxpb.TensorProto
	m.everyTensor(func(tp *onnxpb.TensorProto) { orig = append(orig, tp) })
	c.everyTensor(func(tp *onnxpb.TensorProto) { copies = append(copies, tp) })
	for i, tp := range orig {
		if loc, ok := m.external[tp]; ok {
			c.markExternal(copies[i], loc)
		}
		if m.inline[tp] {
			c.markInline(copies[i])
		}
	}
	return c
}

// saveInline writes a model some of whose tensors are still in its own
// file in one file, tensor by tensor, hashed as it is written.
func (m *Model) saveInline(path string) ([]SavedFile, error) {
	hf, err := createHashed(path)
	if err != nil {
		return nil, err
	}
	if err := m.writeInline(hf); err != nil {
		hf.abort()
		return nil, err
	}
	f, err := hf.close()
	if err != nil {
		return nil, err
	}
	return []SavedFile{f}, nil
}
