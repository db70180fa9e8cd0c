package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// A streamed model's changed weights can be spilled: written to a
// scratch file instead of held in memory, and pointed at as the tensors
// left in the model's files are, so they are read back when asked for
// and copied into the output when it is saved. A transform that changes
// every weight (pruning) then holds the weights it is changing, not all
// it has changed, until the model is written.

// spillSource is a streamed model's Source with its scratch file: the
// location spillKey names is served from the file, every other location
// from the model's own source.
type spillSource struct {
	Source

	mu   sync.Mutex
	file *os.File // created on the first spill
	key  string
	size int64
}

// Size is the scratch file's size, or the model source's file's.
func (s *spillSource) Size(loc string) (int64, error) {
	if f, size := s.scratch(loc); f != nil {
		return size, nil
	}
	return s.Source.Size(loc)
}

// ReadRange reads the scratch file, or the model source's file.
func (s *spillSource) ReadRange(loc string, offset, length int64) (io.ReadCloser, error) {
	if f, _ := s.scratch(loc); f != nil {
		// Not closed by the reader: the file is shared.
		return io.NopCloser(io.NewSectionReader(f, offset, length)), nil
	}
	return s.Source.ReadRange(loc, offset, length)
}

// scratch returns the scratch file and its size when loc names it.
func (s *spillSource) scratch(loc string) (*os.File, int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil || loc != s.key {
		return nil, 0
	}
	return s.file, s.size
}

// write appends raw to the scratch file, creating it first, and returns
// its offset. The file is removed from its directory as soon as it is
// created: it lives while the model does (its descriptor closes when the
// model is collected), and a process killed leaves nothing behind.
func (s *spillSource) write(raw []byte) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.file == nil {
		f, err := os.CreateTemp("", "kompress-spill-*")
		if err != nil {
			return 0, fmt.Errorf("creating a scratch file for changed weights: %w", err)
		}
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return 0, fmt.Errorf("scratch file for changed weights: %w", err)
		}
		s.file, s.key = f, filepath.Base(f.Name())
	}
	off := s.size
	if _, err := s.file.WriteAt(raw, off); err != nil {
		return 0, fmt.Errorf("writing changed weights to a scratch file in %s: %w", filepath.Dir(s.file.Name()), err)
	}
	s.size += int64(len(raw))
	return off, nil
}

// unspilled is src without the scratch file on top.
func unspilled(src Source) Source {
	if s, ok := src.(*spillSource); ok {
		return s.Source
	}
	return src
}

// Spill is w.Set(t) for a weight of m that a streamed model (OpenFile,
// OpenSource, OpenBytes) keeps in its main graph's initializers: t's
// bytes are written to the model's scratch file instead of held in the
// model. The model reads them back when the weight is read, and copies
// them into its output when saved, as it does for a tensor Set: the
// saved bytes are the same. Other weights, those under 64 KiB and the
// weights of a model held in memory are Set.
func (m *Model) Spill(w *Weight, t *Tensor) error {
	if err := w.Set(t); err != nil {
		return err
	}
	s, ok := m.src.(*spillSource)
	tp := w.tp
	if !ok || w.Kind != KindInitializer || w.Graph.Path != "" || len(tp.GetRawData()) < streamMin {
		return nil
	}
	off, err := s.write(tp.RawData)
	if err != nil {
		return fmt.Errorf("weight %q: %w", w.Name, err)
	}
	tp.ExternalData = []*onnxpb.StringStringEntryProto{
		{Key: proto.String("location"), Value: proto.String(s.key)},
		{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(off, 10))},
		{Key: proto.String("length"), Value: proto.String(strconv.Itoa(len(tp.RawData)))},
	}
	tp.DataLocation, tp.RawData = onnxpb.TensorProto_EXTERNAL.Enum(), nil
	// Saved inline unless the model is saved with external data, as a
	// tensor Set (in memory) is.
	m.markInline(tp)
	return nil
}

// spilled reports whether tp's data is in the scratch file.
func (m *Model) spilled(tp *onnxpb.TensorProto) bool {
	s, ok := m.src.(*spillSource)
	if !ok || tp.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
		return false
	}
	f, _ := s.scratch(externalKey(tp, "location"))
	return f != nil
}

// withSpilledInline returns m's proto with the spilled tensors' data
// read back inline (a copy when there are some): ONNX Runtime reads
// external data only from the model's directory, where the scratch file
// is not.
func (m *Model) withSpilledInline() (*onnxpb.ModelProto, error) {
	some := false
	m.everyTensor(func(tp *onnxpb.TensorProto) { some = some || m.spilled(tp) })
	if !some {
		return m.Proto, nil
	}
	c := &Model{Proto: proto.Clone(m.Proto).(*onnxpb.ModelProto), src: m.src}
	var firstErr error
	c.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || !c.spilled(tp) {
			return
		}
		_, firstErr = readIn(tp, c.src)
	})
	return c.Proto, firstErr
}
