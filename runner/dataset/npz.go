package dataset

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/x448/float16"
)

// ReadNPZ reads every array of an .npz archive (what numpy.savez and
// numpy.savez_compressed write). Array names drop the ".npy" suffix.
func ReadNPZ(name string, r io.ReaderAt, size int64) ([]Array, error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz (zip) archive: %w", name, err)
	}
	var out []Array
	for _, f := range z.File {
		a, err := readEntry(name, f)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func readEntry(name string, f *zip.File) (Array, error) {
	arr := strings.TrimSuffix(f.Name, ".npy")
	rc, err := f.Open()
	if err != nil {
		return Array{}, fmt.Errorf("%s: array %q: %w", name, arr, err)
	}
	defer rc.Close()
	// The archive refuses to read past the declared size, so it bounds
	// what the array may claim.
	limit := int64(min(f.UncompressedSize64, math.MaxInt64))
	a, err := readNPY(name+": "+arr, rc, limit)
	if err != nil {
		return Array{}, err
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

// Load reads a dataset from the bytes of an .npz file. name (a file name or
// URI) is used in error messages.
func Load(name string, data []byte) (*Dataset, error) {
	return Read(name, bytes.NewReader(data), int64(len(data)))
}

// LoadFile reads a dataset from an .npz file.
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

// Read reads a dataset from an .npz archive: every array (bool, integer or
// float, any rank), kept in Arrays, and optionally y (integer class
// labels, one per sample). The inputs of a single-input model are x
// (samples along the first dimension, read into X as float32, unscaled,
// and kept in Arrays too only when float32 cannot hold its values
// exactly), or an array named by the model input; a model with several
// inputs takes one array per input, named by the input. Which arrays
// hold samples and which are fed whole with every batch (a scalar, a
// state tensor) is decided against the model by runner/feed.
func Read(name string, r io.ReaderAt, size int64) (*Dataset, error) {
	z, err := zip.NewReader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: not an .npz (zip) archive: %w", name, err)
	}
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
		a, err := readEntry(name, f)
		if err != nil {
			return nil, err
		}
		if n == "x" {
			if err := d.setX(a); err != nil {
				return nil, err
			}
			if exactInFloat32[d.XType] {
				continue // X holds it: not kept twice
			}
		}
		d.Arrays = append(d.Arrays, a)
	}
	if d.Shape == nil && len(d.Arrays) == 0 {
		return nil, fmt.Errorf("%s: no array \"x\" (the inputs); the file has %v", name, names)
	}
	if y != nil {
		ya, err := readEntry(name, y)
		if err != nil {
			return nil, err
		}
		n := -1
		if d.Shape != nil {
			n = d.Len()
		}
		if d.Labels, err = labelsFrom(name, ya, n); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// exactInFloat32 lists the element types whose every value float32 holds
// exactly.
var exactInFloat32 = map[string]bool{
	"bool": true, "uint8": true, "int8": true, "uint16": true, "int16": true, "float16": true, "float32": true,
}

// setX keeps x as float32 in X, unscaled (uint8 pixels stay 0..255).
func (d *Dataset) setX(x Array) error {
	if len(x.Shape) == 0 {
		return fmt.Errorf("%s: x is a scalar; it needs a first dimension that counts the samples", d.Name)
	}
	d.Shape, d.XType = x.Shape, x.DType()
	switch v := x.Data.(type) {
	case []float32:
		d.X = v
	case []float64:
		d.X = toFloat32(v, func(p float64) float32 { return float32(p) })
	case []float16.Float16:
		d.X = toFloat32(v, float16.Float16.Float32)
	case []bool:
		d.X = toFloat32(v, func(p bool) float32 {
			if p {
				return 1
			}
			return 0
		})
	case []uint8:
		d.X = toFloat32(v, func(p uint8) float32 { return float32(p) })
	case []int8:
		d.X = toFloat32(v, func(p int8) float32 { return float32(p) })
	case []uint16:
		d.X = toFloat32(v, func(p uint16) float32 { return float32(p) })
	case []int16:
		d.X = toFloat32(v, func(p int16) float32 { return float32(p) })
	case []uint32:
		d.X = toFloat32(v, func(p uint32) float32 { return float32(p) })
	case []int32:
		d.X = toFloat32(v, func(p int32) float32 { return float32(p) })
	case []uint64:
		d.X = toFloat32(v, func(p uint64) float32 { return float32(p) })
	case []int64:
		d.X = toFloat32(v, func(p int64) float32 { return float32(p) })
	default:
		return fmt.Errorf("%s: x has element type %s; want a bool, integer or float type", d.Name, x.DType())
	}
	return nil
}

func toFloat32[T any](src []T, f func(T) float32) []float32 {
	out := make([]float32, len(src))
	for i, v := range src {
		out[i] = f(v)
	}
	return out
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
