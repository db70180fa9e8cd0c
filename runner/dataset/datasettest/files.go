package datasettest

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// mnistX is a valid x for mnist-8: one 28x28 uint8 image.
func mnistX() Entry {
	return Entry{Name: "x.npy", Data: V1(Dict("|u1", "(1, 1, 28, 28)"), make([]byte, 784))}
}

// floats is n little-endian float32 values 0, 1, 2 ...
func floats(n int) []byte {
	b := make([]byte, 4*n)
	for i := range n {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(i)))
	}
	return b
}

// Files lists the small crafted datasets (a few hundred bytes each,
// committed under runner/dataset/testdata/crafted): one per class of
// malformed .npy header or lying size. Each but the valid one must be
// refused as bad input naming the file, the entry and what was
// expected, allocating no more than a few KiB.
func Files() []Crafted {
	x := "x.npy"
	return []Crafted{
		{
			Name:  "header-no-newline",
			Class: "a .npy header without its closing newline (sbinet/npyio sliced hdr[:-1]: panic at reader.go:101)",
			Entry: x, Want: []string{"does not end with a newline"},
			Data: Zip(Entry{Name: x, Data: V1(strings.TrimSuffix(Dict("<f4", "(2,)"), "\n")+" ", floats(2))}),
		},
		{
			Name:  "header-no-brace",
			Class: "a .npy header whose dict is not closed (no '}': panic at reader.go:128)",
			Entry: x, Want: []string{"the dict is not closed"},
			Data: Zip(Entry{Name: x, Data: V1("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), \n", floats(2))}),
		},
		{
			Name:  "header-keys-reordered",
			Class: "a valid .npy header with its keys in another order, as the format allows (panic at reader.go:126)",
			Entry: x,
			Data:  Zip(Entry{Name: x, Data: V1(Header("'shape': (2, 2)", "'fortran_order': False", "'descr': '<f4'"), floats(4))}),
		},
		{
			Name:  "header-truncated",
			Class: "an entry that ends inside the .npy header its preamble declares",
			Entry: x, Want: []string{".npy header of 118 bytes is longer than its 60-byte entry"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(2,)"), nil)[:60]}),
		},
		{
			Name:  "header-4gib",
			Class: "a version 2.0 .npy header declaring 4 GiB (read into a buffer of that size)",
			Entry: x, Want: []string{".npy header of 4294967295 bytes is longer than the 10000 bytes a header may take"},
			Data: Zip(Entry{Name: x, Data: append([]byte("\x93NUMPY\x02\x00\xff\xff\xff\xff"), Dict("<f4", "(2,)")...)}),
		},
		{
			Name:  "header-version-9",
			Class: "a .npy format version other than 1.0, 2.0 and 3.0",
			Entry: x, Want: []string{".npy format version 9.0 is not supported, expected 1.0, 2.0 or 3.0"},
			Data: Zip(Entry{Name: x, Data: NPY(9, 0, Dict("<f4", "(2,)"), floats(2))}),
		},
		{
			Name:  "header-duplicate-key",
			Class: "a .npy header giving 'descr' twice",
			Entry: x, Want: []string{`key "descr" appears twice`},
			Data: Zip(Entry{Name: x, Data: V1(Header("'descr': '<f4'", "'descr': '<f8'", "'fortran_order': False", "'shape': (2,)"), floats(2))}),
		},
		{
			Name:  "header-missing-shape",
			Class: "a .npy header without 'shape'",
			Entry: x, Want: []string{"key 'shape' is missing"},
			Data: Zip(Entry{Name: x, Data: V1(Header("'descr': '<f4'", "'fortran_order': False"), floats(2))}),
		},
		{
			Name:  "header-extra-key",
			Class: "a .npy header with a key the format does not have",
			Entry: x, Want: []string{`unexpected key "extra", expected only 'descr', 'fortran_order' and 'shape'`},
			Data: Zip(Entry{Name: x, Data: V1(Header("'descr': '<f4'", "'fortran_order': False", "'shape': (2,)", "'extra': 1"), floats(2))}),
		},
		{
			Name:  "structured-descr",
			Class: "a structured (record) array: 'descr' is a list of fields",
			Entry: x, Want: []string{"structured (record) arrays are not supported"},
			Data: Zip(Entry{Name: x, Data: V1(Header("'descr': [('a', '<f4')]", "'fortran_order': False", "'shape': (2,)"), floats(2))}),
		},
		{
			Name:  "object-descr",
			Class: "an array of Python objects (pickled data)",
			Entry: x, Want: []string{`element type "|O" is not supported`},
			Data: Zip(Entry{Name: x, Data: V1(Dict("|O", "(2,)"), []byte("\x80\x04N."))}),
		},
		{
			Name:  "rank-65",
			Class: "a shape of 65 dims (NumPy allows 64)",
			Entry: x, Want: []string{"shape has more than 64 dims"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "("+strings.Repeat("1, ", 65)+")"), floats(1))}),
		},
		{
			Name:  "dim-past-2p63",
			Class: "a dim that does not fit in 64 bits",
			Entry: x, Want: []string{"does not fit in 63 bits"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(99999999999999999999,)"), nil)}),
		},
		{
			Name:  "negative-dim",
			Class: "a shape with a negative dim",
			Entry: x, Want: []string{"shape [-1 4]: dim 0 is -1, expected >= 0"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(-1, 4)"), floats(4))}),
		},
		{
			Name:  "shape-overflow",
			Class: "a shape of [2^32, 2^32] float32, whose byte count overflows 64 bits",
			Entry: x, Want: []string{"shape [4294967296 4294967296] of float32 needs more than 2^63 bytes of data, the entry holds 16"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(4294967296, 4294967296)"), floats(4))}),
		},
		{
			Name:  "shape-2p40-floats",
			Class: "a header claiming 2^40 float32 (4 TiB) in an entry of 16 bytes of data",
			Entry: x, Want: []string{"shape [1099511627776] of float32 needs 4398046511104 bytes of data, the entry holds 16"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(1099511627776,)"), floats(4))}),
		},
		{
			Name: "entry-claims-4tib",
			Class: "the 280-byte .npz of the issue: its entry declares 4 TiB uncompressed and its header 2^40 float32 " +
				"(the old reader trusted the entry's size and allocated 4 TiB)",
			Entry: x, Want: []string{"declares 4398046511232 bytes from", "more than deflate expands to (at most 1032 to 1)"},
			Data: func() []byte {
				npy := V1(Dict("<f4", "(1099511627776,)"), nil)
				raw := Deflated(npy)
				return Zip(Entry{Name: x, Raw: true, Data: raw, Header: zip.FileHeader{
					Method: zip.Deflate, CompressedSize64: uint64(len(raw)), UncompressedSize64: uint64(len(npy)) + 4<<40,
				}})
			}(),
		},
		{
			Name: "stored-size-lie",
			Class: "a stored (uncompressed) entry declaring 4 TiB more than it holds, its header 2^40 float32 " +
				"(the old reader trusted the entry's size and allocated 4 TiB)",
			Entry: x, Want: []string{"stored (uncompressed) entry declares 4398046511232 bytes, it holds 144"},
			Data: func() []byte {
				npy := V1(Dict("<f4", "(1099511627776,)"), floats(4))
				return Zip(Entry{Name: x, Raw: true, Data: npy, Header: zip.FileHeader{
					Method: zip.Store, CompressedSize64: uint64(len(npy)), UncompressedSize64: uint64(len(npy)-16) + 4<<40,
				}})
			}(),
		},
		{
			Name:  "samples-2p40-empty",
			Class: "x of shape [2^40, 0]: no bytes, but 2^40 samples",
			Entry: x, Want: []string{"1099511627776 samples along the first dim, more than the 1048576 a dataset may hold"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(1099511627776, 0)"), nil)}),
		},
		{
			Name:  "empty-dims-span",
			Class: "x of shape [0, 2^40, 2^40]: empty, but its other dims multiply past 2^64",
			Entry: x, Want: []string{"its dims (a 0 counted as 1) span more than the 1073741824 bytes"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(0, 1099511627776, 1099511627776)"), nil)}),
		},
		{
			Name:  "data-truncated",
			Class: "an entry holding less data than its shape needs",
			Entry: x, Want: []string{"shape [4 2] of float32 needs 32 bytes of data, the entry holds 20"},
			Data: Zip(Entry{Name: x, Data: V1(Dict("<f4", "(4, 2)"), floats(5))}),
		},
		{
			Name:  "checksum-mismatch",
			Class: "a stored entry whose data does not match its CRC-32",
			Entry: x, Want: []string{"zip: checksum error"},
			Data: func() []byte {
				b := Zip(Entry{Name: x, Data: V1(Dict("<f4", "(4,)"), floats(4))})
				i := bytes.Index(b, floats(4))
				b[i+5] ^= 0xff
				return b
			}(),
		},
		{
			Name:  "duplicate-array",
			Class: "two entries for the same array",
			Entry: x, Want: []string{`a second array named "x", expected one entry per array`},
			Data: Zip(mnistX(), mnistX()),
		},
		{
			Name:  "not-npy",
			Class: "an entry that is not a .npy array",
			Entry: x, Want: []string{`not a .npy array: starts with "plain ", expected the magic \x93NUMPY`},
			Data: Zip(Entry{Name: x, Data: []byte("plain text")}),
		},
		{
			Name:  "fortran-order",
			Class: "a Fortran-ordered 2-D array",
			Entry: x, Want: []string{"Fortran-ordered arrays are not supported"},
			Data: Zip(Entry{Name: x, Data: V1(Header("'descr': '<f4'", "'fortran_order': True", "'shape': (2, 2)"), floats(4))}),
		},
	}
}

// Bombs lists the crafted datasets that are megabytes (not committed:
// hack/reliability.sh writes them with cmd craftgen):
// deflate bombs, each refused from its header before its data is read.
func Bombs() []Crafted {
	const mib = 1 << 20
	return []Crafted{
		{
			Name: "x-bomb-1gb-mnist",
			Class: "1 MB of deflate expanding to 1,019,200,000 zeros: x uint8 of shape [1300000, 1, 28, 28], " +
				"the issue's bomb (the old reader held it as uint8 and then as float32: 5.3 GB)",
			Entry: "x.npy", Want: []string{"1300000 samples along the first dim, more than the 1048576 a dataset may hold"},
			Data: Zip(Bomb("x.npy", Dict("|u1", "(1300000, 1, 28, 28)"), 1300000*784)),
		},
		{
			Name:  "x-bomb-2gib",
			Class: "2 MB of deflate expanding to 2 GiB of zeros: x uint8 of shape [1024, 2097152]",
			Entry: "x.npy", Want: []string{"shape [1024 2097152] of uint8 needs 2147483648 bytes, more than the 1073741824 bytes a dataset may hold"},
			Data: Zip(Bomb("x.npy", Dict("|u1", "(1024, 2097152)"), 2048*mib)),
		},
	}
}

// String names the file for messages.
func (c Crafted) String() string { return fmt.Sprintf("%s.npz", c.Name) }
