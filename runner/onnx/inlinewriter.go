package onnx

import (
	"bytes"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/kompress/kompress/runner/onnx/onnxpb"
)

// piece is a run of a serialized model: bytes in memory, or length bytes
// of the file loc of the model's source from offset (a raw_data left
// there by openInline).
type piece struct {
	lit            []byte
	loc            string
	offset, length int64
}

func (p piece) size() int64 {
	if p.lit != nil {
		return int64(len(p.lit))
	}
	return p.length
}

type pieces []piece

func (ps pieces) size() int64 {
	var n int64
	for _, p := range ps {
		n += p.size()
	}
	return n
}

// inlinePieces is the model serialized with every tensor inline, as
// proto.Marshal gives it (fields in number order, unknown fields last),
// the raw_data still in the model file left as ranges of it: nothing
// larger than the structure is held.
func (m *Model) inlinePieces() (pieces, error) {
	before, after, err := splitFields(m.Proto, fieldModelGraph)
	if err != nil {
		return nil, err
	}
	out := pieces{{lit: before}}
	if g := m.Proto.GetGraph(); g != nil {
		gp, err := m.graphPieces(g)
		if err != nil {
			return nil, err
		}
		out = append(out, field(fieldModelGraph, gp.size()))
		out = append(out, gp...)
	}
	return append(out, piece{lit: after}), nil
}

// graphPieces is the main graph's part of inlinePieces.
func (m *Model) graphPieces(g *onnxpb.GraphProto) (pieces, error) {
	before, after, err := splitFields(g, fieldGraphInitializer)
	if err != nil {
		return nil, err
	}
	out := pieces{{lit: before}}
	for _, tp := range g.GetInitializer() {
		var tps pieces
		if m.lazyInline(tp) {
			if tps, err = lazyTensorPieces(tp); err != nil {
				return nil, err
			}
		} else {
			b, err := proto.Marshal(tp)
			if err != nil {
				return nil, err
			}
			tps = pieces{{lit: b}}
		}
		out = append(out, field(fieldGraphInitializer, tps.size()))
		out = append(out, tps...)
	}
	return append(out, piece{lit: after}), nil
}

// lazyTensorPieces serializes a tensor openInline left in the model
// file as it was there: its raw_data in place of the reference.
func lazyTensorPieces(tp *onnxpb.TensorProto) (pieces, error) {
	loc := externalKey(tp, "location")
	offset, err := externalInt(tp, "offset", 0)
	if err != nil {
		return nil, err
	}
	length, err := externalInt(tp, "length", 0)
	if err != nil {
		return nil, err
	}
	c := proto.Clone(tp).(*onnxpb.TensorProto) // small: no data
	c.ExternalData, c.DataLocation = nil, nil
	before, after, err := splitFields(c, fieldTensorRawData)
	if err != nil {
		return nil, err
	}
	return pieces{{lit: before}, field(fieldTensorRawData, length), {loc: loc, offset: offset, length: length}, {lit: after}}, nil
}

// field is the tag and length of a length-delimited field.
func field(num protowire.Number, length int64) piece {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	return piece{lit: protowire.AppendVarint(b, uint64(length))}
}

// splitFields serializes msg's fields numbered below num, and those above
// it with its unknown fields: what proto.Marshal writes before and after
// field num.
func splitFields(msg proto.Message, num protowire.Number) (before, after []byte, err error) {
	r := msg.ProtoReflect()
	lo, hi := r.New(), r.New()
	r.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.Number() < num:
			lo.Set(fd, v)
		case fd.Number() > num:
			hi.Set(fd, v)
		}
		return true
	})
	hi.SetUnknown(r.GetUnknown())
	if before, err = proto.Marshal(lo.Interface()); err != nil {
		return nil, nil, err
	}
	if after, err = proto.Marshal(hi.Interface()); err != nil {
		return nil, nil, err
	}
	// Never nil: a nil lit is a range.
	return append([]byte{}, before...), append([]byte{}, after...), nil
}

// writeInline writes the model with every tensor inline to w, copying
// the raw_data still in the model file from it range by range.
func (m *Model) writeInline(w io.Writer) error {
	if err := m.settleStrays(); err != nil {
		return fmt.Errorf("%s: %w", m.label(), err)
	}
	ps, err := m.inlinePieces()
	if err != nil {
		return fmt.Errorf("%s: %w", m.label(), err)
	}
	if n := ps.size(); n > int64(maxProtoSize) {
		return fmt.Errorf("%s: model is %d bytes, past protobuf's 2 GiB limit: save it with SaveFile, which moves weights to an external data file", m.label(), n)
	}
	for _, p := range ps {
		if err := m.writePiece(w, p); err != nil {
			return fmt.Errorf("%s: %w", m.label(), err)
		}
	}
	return nil
}

func (m *Model) writePiece(w io.Writer, p piece) error {
	if p.lit != nil {
		_, err := w.Write(p.lit)
		return err
	}
	r, err := m.src.ReadRange(p.loc, p.offset, p.length)
	if err != nil {
		return fmt.Errorf("reading %q: %w", p.loc, err)
	}
	defer r.Close()
	n, err := io.Copy(w, r)
	if err == nil && n != p.length {
		err = fmt.Errorf("%q ended %d bytes into a tensor of %d", p.loc, n, p.length)
	}
	return err
}

// inlineBytes is writeInline into memory.
func (m *Model) inlineBytes() ([]byte, error) {
	var b bytes.Buffer
	if ps, err := m.inlinePieces(); err == nil {
		b.Grow(int(min(ps.size(), int64(maxProtoSize))))
	}
	if err := m.writeInline(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// hasLazyInline reports whether some tensor is still a range of the
// model's own file.
func (m *Model) hasLazyInline() bool {
	found := false
	m.everyTensor(func(tp *onnxpb.TensorProto) { found = found || m.lazyInline(tp) })
	return found
}

// settleStrays reads in the raw_data of tensors left in the model file
// that a transform moved out of the main graph's initializers, where
// inlinePieces does not look for them.
func (m *Model) settleStrays() error {
	main := map[*onnxpb.TensorProto]bool{}
	for _, tp := range m.Proto.GetGraph().GetInitializer() {
		main[tp] = true
	}
	var firstErr error
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if firstErr != nil || main[tp] || !m.lazyInline(tp) {
			return
		}
		_, firstErr = readIn(tp, m.src)
	})
	return firstErr
}

// inlineSize is the model's serialized size with every tensor inline.
func (m *Model) inlineSize() int64 {
	n := int64(proto.Size(m.Proto))
	m.everyTensor(func(tp *onnxpb.TensorProto) {
		if m.lazyInline(tp) {
			length, _ := externalInt(tp, "length", 0)
			n += length
		}
	})
	return n
}
