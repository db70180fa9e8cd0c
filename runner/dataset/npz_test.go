package dataset

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/x448/float16"

	"github.com/kompress/kompress/runner/fault"
)

func TestReadNumpyFiles(t *testing.T) {
	// Written by numpy itself (testdata/gen.py).
	tests := []struct {
		file string
		want *Dataset
	}{
		{
			file: "numpy-savez.npz",
			want: &Dataset{
				Name:   "numpy-savez.npz",
				Shape:  []int{3, 2, 2},
				X:      []float32{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5},
				Labels: []int64{2, 0, 1},
				XType:  "float32",
				// Every array but y is kept as read; X shares float32 x.
				Arrays: []Array{
					{Name: "x", Shape: []int{3, 2, 2}, Data: []float32{0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5, 5, 5.5}},
					{Name: "extra", Shape: []int{5}, Data: []float64{1, 1, 1, 1, 1}},
				},
			},
		},
		{
			file: "numpy-compressed-be.npz",
			want: &Dataset{
				Name:   "numpy-compressed-be.npz",
				Shape:  []int{4, 6},
				Labels: []int64{9, 8, 7, 6},
				XType:  "float64",
				// x is kept as read, big-endian float64 decoded; no
				// float32 copy.
				Arrays: []Array{{Name: "x", Shape: []int{4, 6}, Data: seq64(24, -3.25)}},
			},
		},
		{
			file: "numpy-nolabels.npz",
			want: &Dataset{
				Name:   "numpy-nolabels.npz",
				Shape:  []int{5, 2},
				XType:  "uint8",
				Arrays: []Array{{Name: "x", Shape: []int{5, 2}, Data: []uint8{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := LoadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			// Samples read as float32 whatever x's type.
			x, _ := got.XArray()
			if d := cmp.Diff(float32s(x.Data), got.Float32s(0, got.Len())); d != "" {
				t.Errorf("Float32s (-want +got):\n%s", d)
			}
		})
	}
}

// float32s converts a slice of numbers.
func float32s(data any) []float32 {
	switch v := data.(type) {
	case []float32:
		return v
	case []float64:
		return floats(v)
	case []uint8:
		return floats(v)
	case []int64:
		return floats(v)
	}
	panic(fmt.Sprintf("float32s: %T", data))
}

func floats[T uint8 | int64 | float64](v []T) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out
}

func seq64(n int, start float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = start + float64(i)
	}
	return out
}

func seq(n int, start float32) []float32 {
	out := make([]float32, n)
	for i := range out {
		out[i] = start + float32(i)
	}
	return out
}

func TestNPZRoundTrip(t *testing.T) {
	arrays := []Array{
		{Name: "u8", Shape: []int{2, 3}, Data: []uint8{0, 1, 2, 253, 254, 255}},
		{Name: "i8", Shape: []int{3}, Data: []int8{-128, 0, 127}},
		{Name: "u16", Shape: []int{2}, Data: []uint16{1, 65535}},
		{Name: "i16", Shape: []int{2}, Data: []int16{-32768, 32767}},
		{Name: "u32", Shape: []int{1}, Data: []uint32{4294967295}},
		{Name: "i32", Shape: []int{2, 1}, Data: []int32{-7, 7}},
		{Name: "u64", Shape: []int{1}, Data: []uint64{1 << 63}},
		{Name: "i64", Shape: []int{3}, Data: []int64{-1 << 62, 0, 1 << 62}},
		{Name: "f32", Shape: []int{1, 2, 2}, Data: []float32{-1.5, 0, 3.25, 1e-30}},
		{Name: "f64", Shape: []int{2}, Data: []float64{-2.5e300, 1.0 / 3}},
		{Name: "b", Shape: []int{3}, Data: []bool{true, false, true}},
		{Name: "f16", Shape: []int{2}, Data: []float16.Float16{float16.Fromfloat32(0.5), float16.Fromfloat32(-65504)}},
		{Name: "scalar", Shape: []int{}, Data: []float32{42}},
		{Name: "empty", Shape: []int{0, 4}, Data: []float32{}},
	}
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, arrays...); err != nil {
		t.Fatal(err)
	}
	got, err := ReadNPZ("round.npz", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(arrays, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestWriteNPZRejectsBadArrays(t *testing.T) {
	tests := []struct {
		a       Array
		wantErr string
	}{
		{Array{Name: "x", Shape: []int{2, 2}, Data: []float32{1, 2, 3}}, `array "x": shape [2 2] needs 4 elements, data has 3`},
		{Array{Name: "x", Shape: []int{1}, Data: []string{"a"}}, `array "x": unsupported data type []string`},
	}
	for _, tt := range tests {
		err := WriteNPZ(&bytes.Buffer{}, tt.a)
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("WriteNPZ(%v) error = %v, want %q", tt.a, err, tt.wantErr)
		}
	}
}

// rawNPZ builds an archive from hand-made .npy entries.
func rawNPZ(t *testing.T, entries map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for name, data := range entries {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// rawNPY is a .npy header for descr and shape followed by data.
func rawNPY(descr, shape string, data []byte) []byte {
	dict := "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(dict)))
	b.WriteString(dict)
	b.Write(data)
	return b.Bytes()
}

func npzOf(t *testing.T, arrays ...Array) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteNPZ(&buf, arrays...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestLoadErrors(t *testing.T) {
	x := Array{Name: "x", Shape: []int{3, 2}, Data: make([]uint8, 6)}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"not a zip", []byte("hello"), "bad.npz: not an .npz (zip) archive"},
		// A file without x may feed a model with several inputs (one
		// array each): only a file with no inputs at all is refused here.
		{"no inputs", npzOf(t, Array{Name: "y", Shape: []int{1}, Data: []uint8{1}}), `bad.npz: no array "x" (the inputs); the file has [y]`},
		{"scalar x", npzOf(t, Array{Name: "x", Shape: []int{}, Data: []float32{1}}), "bad.npz: x is a scalar"},
		{"float y", npzOf(t, x, Array{Name: "y", Shape: []int{3}, Data: []float32{1, 2, 3}}), "bad.npz: y has element type float32; want integer class labels"},
		{"short y", npzOf(t, x, Array{Name: "y", Shape: []int{2}, Data: []int64{1, 2}}), "bad.npz: y has 2 labels, but x has 3 samples"},
		{"2-d y", npzOf(t, x, Array{Name: "y", Shape: []int{3, 2}, Data: make([]int64, 6)}), "bad.npz: y has shape [3 2]; want [3] (one class label per sample)"},
		{"truncated", rawNPZ(t, map[string][]byte{"x.npy": rawNPY("<f4", "(4, 2)", make([]byte, 20))}), `bad.npz: entry "x.npy": shape [4 2] of float32 needs 32 bytes of data, the entry holds 20`},
		{"complex", rawNPZ(t, map[string][]byte{"x.npy": rawNPY("<c8", "(1,)", make([]byte, 8))}), `bad.npz: entry "x.npy": element type "<c8" is not supported`},
		{"not npy", rawNPZ(t, map[string][]byte{"x.npy": []byte("plain text")}), `bad.npz: entry "x.npy": not a .npy array`},
		// A header may claim any shape: it must not be allocated before
		// the entry is known to hold that much.
		{"shape beyond the entry", rawNPZ(t, map[string][]byte{"x.npy": rawNPY("<f4", "(1000000000, 1000)", make([]byte, 16))}),
			`bad.npz: entry "x.npy": shape [1000000000 1000] of float32 needs 4000000000000 bytes of data, the entry holds 16`},
		{"shape overflowing", rawNPZ(t, map[string][]byte{"x.npy": rawNPY("<f4", "(4294967296, 4294967296)", make([]byte, 16))}),
			`bad.npz: entry "x.npy": shape [4294967296 4294967296] of float32 needs more than 2^63 bytes of data, the entry holds 16`},
		{"y malformed", rawNPZ(t, map[string][]byte{"x.npy": rawNPY("|u1", "(1,)", []byte{1}), "y.npy": rawNPY("|u1", "(2,)", []byte{1})}),
			`bad.npz: entry "y.npy": shape [2] of uint8 needs 2 bytes of data, the entry holds 1`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("bad.npz", tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
			if !fault.IsBadInput(err) {
				t.Errorf("error %v does not wrap fault.ErrBadInput: retrying cannot fix a file", err)
			}
		})
	}
}

// TestReadKeepsEveryArray: arrays of any supported type are kept as
// they are (x of an integer type is not copied to float32), and a file
// without x (a model with several inputs) is read.
func TestReadKeepsEveryArray(t *testing.T) {
	ids := Array{Name: "x", Shape: []int{2, 3}, Data: []int64{1, 2, 3, 1 << 40, 5, 6}}
	mask := Array{Name: "mask", Shape: []int{2, 3}, Data: []bool{true, true, false, true, false, false}}
	sr := Array{Name: "sr", Shape: []int{}, Data: []int64{16000}}
	half := Array{Name: "half", Shape: []int{1, 2}, Data: []float16.Float16{float16.Fromfloat32(1.5), float16.Fromfloat32(-2)}}
	y := Array{Name: "y", Shape: []int{2}, Data: []int32{1, 0}}
	tests := []struct {
		name string
		file []Array
		want *Dataset
	}{
		{"integer x", []Array{ids, mask, sr, y}, &Dataset{
			Name: "f.npz", Shape: []int{2, 3}, XType: "int64", Labels: []int64{1, 0},
			Arrays: []Array{ids, mask, sr},
		}},
		{"no x", []Array{mask, half, sr}, &Dataset{Name: "f.npz", Arrays: []Array{mask, half, sr}}},
		{"no x, labels", []Array{mask, y}, &Dataset{Name: "f.npz", Labels: []int64{1, 0}, Arrays: []Array{mask}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Load("f.npz", npzOf(t, tc.file...))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
			if n := got.Len(); n != 2 {
				t.Errorf("Len() = %d, want 2", n)
			}
		})
	}
	// Labels without x are counted by the feeder against the arrays
	// that hold samples: here only their own shape is checked.
	if _, err := Load("f.npz", npzOf(t, mask, Array{Name: "y", Shape: []int{2, 2}, Data: make([]int64, 4)})); err == nil ||
		!strings.Contains(err.Error(), "f.npz: y has shape [2 2]; want [N] (one class label per sample)") {
		t.Errorf("2-D labels without x: error %v", err)
	}
}

func TestWriteNPZFileIsAtomicAndReadable(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.npz")
	x := Array{Name: "x", Shape: []int{2, 2}, Data: []uint8{1, 2, 3, 4}}
	if err := WriteNPZFile(p, x); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("want only d.npz in the folder, got %d entries", len(entries))
	}
	d, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Labels != nil || cmp.Diff([]float32{1, 2, 3, 4}, d.Float32s(0, 2)) != "" {
		t.Errorf("read back %+v", d)
	}
	if err := WriteNPZFile(filepath.Join(dir, "missing", "d.npz"), x); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}
