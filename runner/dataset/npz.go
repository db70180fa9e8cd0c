package dataset

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kompress/kompress/runner/fault"
)

// ReadNPZ reads every array of an .npz archive (what numpy.savez and
// numpy.savez_compressed write), within the default limits. Array names
// drop the ".npy" suffix.
func ReadNPZ(name string, r io.ReaderAt, size int64) ([]Array, error) {
	z, err := openNPZ(name, r, size)
	if err != nil {
		return nil, err
	}
	b := &budget{Limits: DefaultLimits()}
	var out []Array
	for _, f := range z.File {
		a, err := readEntry(name, f, size, b)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// openNPZ opens the zip archive and checks its entries' names: one
// array each, no two alike.
func openNPZ(name string, r io.ReaderAt, size int64) (*zip.Reader, error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fault.Badf("%s: not an .npz (zip) archive: %w", name, err)
	}
	seen := map[string]bool{}
	for _, f := range z.File {
		arr := strings.TrimSuffix(f.Name, ".npy")
		if seen[arr] {
			return nil, fault.Badf("%s: entry %q: a second array named %q, expected one entry per array", name, f.Name, arr)
		}
		seen[arr] = true
	}
	return z, nil
}

// maxDeflateRatio is the most deflate can expand data: a 258-byte match
// coded in 2 bits.
const maxDeflateRatio = 1032

// readEntry reads one array. The sizes the archive declares for the
// entry are checked against the file first (its compressed bytes inside
// the file, and no more uncompressed bytes than they can expand to), so
// that what the .npy header declares is compared with sizes the file can
// actually hold.
func readEntry(name string, f *zip.File, fileSize int64, b *budget) (Array, error) {
	arr := strings.TrimSuffix(f.Name, ".npy")
	bad := func(err error) error {
		return fault.Badf("%s: entry %q: %w", name, f.Name, err)
	}
	off, err := f.DataOffset()
	if err != nil {
		return Array{}, bad(err)
	}
	comp, size := f.CompressedSize64, f.UncompressedSize64
	if off < 0 || off > fileSize || comp > uint64(fileSize-off) {
		return Array{}, bad(fmt.Errorf("%d compressed bytes at offset %d run past the end of the %d-byte file", comp, off, fileSize))
	}
	switch f.Method {
	case zip.Store:
		if size != comp {
			return Array{}, bad(fmt.Errorf("stored (uncompressed) entry declares %d bytes, it holds %d", size, comp))
		}
	case zip.Deflate:
		if size/maxDeflateRatio > comp {
			return Array{}, bad(fmt.Errorf("declares %d bytes from %d compressed bytes, more than deflate expands to (at most %d to 1)", size, comp, maxDeflateRatio))
		}
	default:
		return Array{}, bad(fmt.Errorf("compression method %d is not supported, expected stored or deflate (what numpy writes)", f.Method))
	}
	rc, err := f.Open()
	if err != nil {
		return Array{}, bad(err)
	}
	defer rc.Close()
	a, err := readNPY(rc, int64(size), b)
	if err != nil {
		return Array{}, bad(err)
	}
	a.Name = arr
	return a, nil
}

// WriteNPZ writes arrays as a compressed .npz archive (deflate, as
// numpy.savez_compressed), each as NAME.npy so that numpy.load finds it
// under NAME.
func WriteNPZ(w io.Writer, arrays ...Array) error {
	z := zip.NewWriter(w)
	z.RegisterCompressor(zip.Deflate, func(w io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(w, flate.BestCompression)
	})
	for _, a := range arrays {
		f, err := z.CreateHeader(&zip.FileHeader{Name: a.Name + ".npy", Method: zip.Deflate})
		if err != nil {
			return err
		}
		if err := writeNPY(f, a); err != nil {
			return err
		}
	}
	return z.Close()
}

// WriteNPZFile writes arrays to path through a temporary file renamed into
// place, so a reader never sees half a file.
func WriteNPZFile(path string, arrays ...Array) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := WriteNPZ(tmp, arrays...); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// CreateTemp makes the file private; a dataset is not a secret.
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Load reads a dataset from the bytes of an .npz file, within the
// default limits. name (a file name or URI) is used in error messages.
func Load(name string, data []byte) (*Dataset, error) {
	return Limits{}.Load(name, data)
}

// Load reads a dataset from the bytes of an .npz file within l.
func (l Limits) Load(name string, data []byte) (*Dataset, error) {
	return l.Read(name, bytes.NewReader(data), int64(len(data)))
}

// LoadFile reads a dataset from an .npz file, within the default limits.
func LoadFile(path string) (*Dataset, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return Read(filepath.Base(path), f, st.Size())
}

// Read reads a dataset from an .npz archive within the default limits
// (see Limits.Read).
func Read(name string, r io.ReaderAt, size int64) (*Dataset, error) {
	return Limits{}.Read(name, r, size)
}

// Read reads a dataset from an .npz archive: every array but y (bool,
// integer or float, any rank) kept in its own element type in Arrays, and
// optionally y (integer class labels, one per sample) in Labels. The
// inputs of a single-input model are x (samples along the first
// dimension; Shape and XType describe it, and X shares its values when
// they are float32), or an array named by the model input; a model with
// several inputs takes one array per input, named by the input. Which
// arrays hold samples and which are fed whole with every batch (a scalar,
// a state tensor) is decided against the model by runner/feed, which
// converts values to each input's type a batch at a time.
//
// Every array's header is checked against its entry and the limits before
// the array is read (Limits); every error wraps fault.ErrBadInput and
// names the file and the entry.
func (l Limits) Read(name string, r io.ReaderAt, size int64) (*Dataset, error) {
	z, err := openNPZ(name, r, size)
	if err != nil {
		return nil, err
	}
	b := &budget{Limits: l.orDefault()}
	d := &Dataset{Name: name}
	var names []string
	var y *zip.File
	for _, f := range z.File {
		n := strings.TrimSuffix(f.Name, ".npy")
		names = append(names, n)
		if n == "y" {
			y = f
			continue
		}
		a, err := readEntry(name, f, size, b)
		if err != nil {
			return nil, err
		}
		if n == "x" {
			if err := d.setX(a); err != nil {
				return nil, fault.BadInput(err)
			}
		}
		d.Arrays = append(d.Arrays, a)
	}
	if d.Shape == nil && len(d.Arrays) == 0 {
		return nil, fault.Badf("%s: no array \"x\" (the inputs); the file has %v", name, names)
	}
	if y != nil {
		ya, err := readEntry(name, y, size, b)
		if err != nil {
			return nil, err
		}
		n := -1
		if d.Shape != nil {
			n = d.Len()
		}
		if d.Labels, err = labelsFrom(name, ya, n); err != nil {
			return nil, fault.BadInput(err)
		}
	}
	return d, nil
}

// setX describes x: its shape and type, and its values as X when they
// are float32 (shared, not copied). x of any other type stays in its own
// type only; it is converted a batch at a time where float32 is needed.
func (d *Dataset) setX(x Array) error {
	if len(x.Shape) == 0 {
		return fmt.Errorf("%s: x is a scalar; it needs a first dimension that counts the samples", d.Name)
	}
	d.Shape, d.XType = x.Shape, x.DType()
	if v, ok := x.Data.([]float32); ok {
		d.X = v
	}
	return nil
}

// labelsFrom accepts y of shape [N] or [N 1] and any integer type; n < 0
// when the file has no x to count the samples (runner/feed checks y
// against the arrays that hold them).
func labelsFrom(name string, y Array, n int) ([]int64, error) {
	if !(len(y.Shape) == 1 || len(y.Shape) == 2 && y.Shape[1] == 1) {
		want := "N"
		if n >= 0 {
			want = fmt.Sprint(n)
		}
		return nil, fmt.Errorf("%s: y has shape %v; want [%s] (one class label per sample)", name, y.Shape, want)
	}
	if n < 0 {
		n = y.Shape[0]
	}
	if y.Shape[0] != n {
		return nil, fmt.Errorf("%s: y has %d labels, but x has %d samples", name, y.Shape[0], n)
	}
	out := make([]int64, n)
	switch v := y.Data.(type) {
	case []uint8:
		convert(out, v)
	case []int8:
		convert(out, v)
	case []uint16:
		convert(out, v)
	case []int16:
		convert(out, v)
	case []uint32:
		convert(out, v)
	case []int32:
		convert(out, v)
	case []uint64:
		convert(out, v)
	case []int64:
		copy(out, v)
	default:
		return nil, fmt.Errorf("%s: y has element type %s; want integer class labels", name, y.DType())
	}
	return out, nil
}

func convert[T uint8 | int8 | uint16 | int16 | uint32 | int32 | uint64](dst []int64, src []T) {
	for i, v := range src {
		dst[i] = int64(v)
	}
}
