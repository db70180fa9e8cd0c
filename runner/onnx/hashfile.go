package onnx

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
	"os"

	"github.com/kompress/kompress/runner/panics"
)

// hashedFile writes a file through a buffer while hashing what it
// writes, so the digest of a file of any size costs no second read.
type hashedFile struct {
	f    *os.File
	buf  *bufio.Writer
	h    hash.Hash
	w    io.Writer
	size int64
}

func createHashed(path string) (*hashedFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	buf := bufio.NewWriterSize(f, 1<<20)
	return &hashedFile{f: f, buf: buf, h: h, w: io.MultiWriter(buf, h)}, nil
}

// parallelHashMin is the size from which a write is hashed on a
// goroutine of its own while it is written: one after the other, hashing
// and writing the hundreds of MB of a quantized model's weights cost the
// sum of the two; side by side, the longer.
const parallelHashMin = 1 << 20

func (hf *hashedFile) Write(p []byte) (int, error) {
	if len(p) < parallelHashMin {
		n, err := hf.w.Write(p)
		hf.size += int64(n)
		return n, err
	}
	var hashing panics.Group
	hashing.Go(func() { hf.h.Write(p) })
	n, err := hf.buf.Write(p)
	hashing.Wait() // p is not kept past Write
	hf.size += int64(n)
	return n, err
}

// close flushes and closes the file and returns what was written.
func (hf *hashedFile) close() (SavedFile, error) {
	err := hf.buf.Flush()
	if cerr := hf.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return SavedFile{}, err
	}
	return SavedFile{Path: hf.f.Name(), Size: hf.size, SHA256: hex.EncodeToString(hf.h.Sum(nil))}, nil
}

// abort closes and removes a file whose writing failed.
func (hf *hashedFile) abort() {
	hf.f.Close()
	os.Remove(hf.f.Name())
}

// writeFile writes b to path and returns its digest.
func writeFile(path string, b []byte) (SavedFile, error) {
	hf, err := createHashed(path)
	if err != nil {
		return SavedFile{}, err
	}
	if _, err := hf.Write(b); err != nil {
		hf.abort()
		return SavedFile{}, err
	}
	return hf.close()
}
