// Package datasettest builds the crafted .npz datasets of issue 11: .npy
// headers the old parser (sbinet/npyio) panicked on, sizes declared far
// past what the file holds, deflate bombs. runner/dataset's tests read
// them directly; the runner's and kompress's tests run stages on them;
// `go test ./runner/dataset -run TestCraftedFiles -update-crafted`
// writes the small ones to runner/dataset/testdata/crafted, and
// hack/reliability.sh writes every one (the bombs are megabytes) with
// cmd craftgen to measure them.
package datasettest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"strings"
)

// Crafted is one .npz file of a class of hostile or malformed input.
type Crafted struct {
	// Name is a file name stem: testdata/crafted/<Name>.npz.
	Name string
	// Class describes the input for docs/reliability.md.
	Class string
	// Entry is the zip entry at fault, which the error names ("x.npy").
	Entry string
	// Want are substrings of the error after "<file>: entry "<Entry>": ".
	// Empty for a file that is valid (and must load).
	Want []string
	// Data is the file.
	Data []byte
}

// Header is a .npy header dict as NumPy writes it: the given keys and
// values in order, padded with spaces to a multiple of 64 bytes with the
// 10-byte version 1.0 preamble, and ended by a newline.
func Header(items ...string) string {
	dict := "{" + strings.Join(items, ", ") + ", }"
	pad := 63 - (10+len(dict))%64
	return dict + strings.Repeat(" ", pad) + "\n"
}

// Dict is the usual header of an array of descr and shape (a Python
// tuple, "(2, 3)" or "(5,)").
func Dict(descr, shape string) string {
	return Header("'descr': '"+descr+"'", "'fortran_order': False", "'shape': "+shape)
}

// NPY is a .npy stream of format version major.minor: the preamble with
// the header's length in the version's width, the header and data.
func NPY(major, minor byte, header string, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("\x93NUMPY")
	b.WriteByte(major)
	b.WriteByte(minor)
	if major == 1 {
		binary.Write(&b, binary.LittleEndian, uint16(len(header)))
	} else {
		binary.Write(&b, binary.LittleEndian, uint32(len(header)))
	}
	b.WriteString(header)
	b.Write(data)
	return b.Bytes()
}

// V1 is a version 1.0 .npy stream.
func V1(header string, data []byte) []byte { return NPY(1, 0, header, data) }

// Entry is one file of a zip archive. By default it is stored with its
// true sizes and checksum; Raw entries are written as given.
type Entry struct {
	Name string
	Data []byte
	// Deflate compresses it (what numpy.savez_compressed does).
	Deflate bool
	// Raw writes Data as the entry's stored bytes under Header's method,
	// sizes and checksum, whatever they say.
	Raw    bool
	Header zip.FileHeader
}

// Zip writes an archive of the entries, in order.
func Zip(entries ...Entry) []byte {
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, e := range entries {
		var err error
		switch {
		case e.Raw:
			h := e.Header
			h.Name = e.Name
			w, cerr := z.CreateRaw(&h)
			if cerr != nil {
				panic(cerr)
			}
			_, err = w.Write(e.Data)
		default:
			method := zip.Store
			if e.Deflate {
				method = zip.Deflate
			}
			w, cerr := z.CreateHeader(&zip.FileHeader{Name: e.Name, Method: method})
			if cerr != nil {
				panic(cerr)
			}
			_, err = w.Write(e.Data)
		}
		if err != nil {
			panic(err)
		}
	}
	if err := z.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Deflated is data compressed as a raw deflate stream.
func Deflated(data []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// Bomb is a deflated entry named name holding the .npy header and then
// zeros bytes of zeros, true to its sizes and checksum: the few hundred
// bytes of deflate that expand to each MiB are repeated, so building a
// 2 GiB bomb costs a second, not a compression of 2 GiB.
func Bomb(name, header string, zeros int64) Entry {
	const mib = 1 << 20
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.BestCompression)
	pre := V1(header, nil)
	w.Write(pre)
	w.Flush()
	head := bytes.Clone(out.Bytes())
	out.Reset()
	// A MiB of zeros after the header: its matches reach back only to
	// zeros (the header holds no run of them), so the block means the
	// same after any run of at least 32 KiB of zeros. The rest is
	// compressed after what precedes it in the stream.
	var block []byte
	if zeros >= mib {
		w.Write(make([]byte, mib))
		w.Flush()
		block = bytes.Clone(out.Bytes())
		out.Reset()
	}
	rest := zeros % mib
	w.Write(make([]byte, rest))
	w.Flush()
	tail := bytes.Clone(out.Bytes())
	crc := crc32.ChecksumIEEE(pre)
	zero := make([]byte, mib)
	var stream bytes.Buffer
	stream.Write(head)
	for range zeros / mib {
		stream.Write(block)
		crc = crc32.Update(crc, crc32.IEEETable, zero)
	}
	stream.Write(tail)
	crc = crc32.Update(crc, crc32.IEEETable, zero[:rest])
	stream.Write([]byte{0x03, 0x00}) // a final empty block of fixed codes
	return Entry{Name: name, Data: stream.Bytes(), Raw: true, Header: zip.FileHeader{
		Method: zip.Deflate, CRC32: crc,
		CompressedSize64: uint64(stream.Len()), UncompressedSize64: uint64(len(pre)) + uint64(zeros),
	}}
}
