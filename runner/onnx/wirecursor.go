package onnx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// wireCursor reads a file of a Source front to back, as protobuf is read,
// and skips ranges without reading them (a new range read past them), so
// a model's structure is read without its weights' bytes.
type wireCursor struct {
	src  Source
	loc  string
	size int64
	off  int64 // of the next byte br gives
	r    io.ReadCloser
	br   *bufio.Reader
}

func newWireCursor(src Source, loc string) (*wireCursor, error) {
	size, err := src.Size(loc)
	if err != nil {
		return nil, err
	}
	c := &wireCursor{src: src, loc: loc, size: size, br: bufio.NewReaderSize(nil, 1<<16)}
	return c, c.seek(0)
}

// seek reads on from off.
func (c *wireCursor) seek(off int64) error {
	c.close()
	r, err := c.src.ReadRange(c.loc, off, c.size-off)
	if err != nil {
		return err
	}
	c.r, c.off = r, off
	c.br.Reset(r)
	return nil
}

func (c *wireCursor) close() {
	if c.r != nil {
		c.r.Close()
		c.r = nil
	}
}

func (c *wireCursor) ReadByte() (byte, error) {
	b, err := c.br.ReadByte()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		c.off++
	}
	return b, err
}

func (c *wireCursor) varint() (uint64, error) { return binary.ReadUvarint(c) }

// length reads a length that must fit before end.
func (c *wireCursor) length(end int64) (int64, error) {
	n, err := c.varint()
	if err != nil {
		return 0, err
	}
	if n > uint64(end-c.off) {
		return 0, errors.New("a length runs past its message")
	}
	return int64(n), nil
}

// bytes reads n bytes (n checked against the message's end by length).
func (c *wireCursor) bytes(n int64) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(c.br, b)
	c.off += n
	return b, err
}

// skip passes n bytes, reading them only if they are already buffered.
func (c *wireCursor) skip(n int64) error {
	if n <= int64(c.br.Buffered()) {
		c.br.Discard(int(n))
		c.off += n
		return nil
	}
	return c.seek(c.off + n)
}
