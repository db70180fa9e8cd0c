package dataset

import (
	"fmt"
	"iter"

	"github.com/x448/float16"
)

// Dataset is a set of samples ready to feed a model: every array of the
// file in its own element type (one per model input for a model with
// several; x, the samples of a single-input model), and, when the file
// has them, integer class labels. Nothing is converted when a file is
// read: runner/feed converts values to each input's element type a batch
// at a time, so uint8 pixels take a byte each in memory, not four.
type Dataset struct {
	// Name is the file or URI it came from, for messages.
	Name string
	// Shape of the inputs x: [N, sample dims...]; nil when the file has
	// no x.
	Shape []int
	// X holds x's N * SampleSize() values as float32 when it is stored
	// as float32 (sharing memory with its array) or was built in memory
	// from float32 values; nil otherwise. Read samples of any type as
	// float32 with Float32s and SampleInto.
	X []float32
	// XType is the element type x was stored in ("uint8"); empty means
	// float32.
	XType string
	// XName names the array of Arrays that holds x: "x" when empty;
	// runner/feed's Fit points it at the array named by a single-input
	// model's input.
	XName string
	// Labels holds N class labels (y), or is nil.
	Labels []int64
	// Arrays holds the arrays of the file but y, x included, in file
	// order and in their own element types. Which arrays hold samples
	// (along their first dimension) and which are fed whole with every
	// batch is decided against a model's inputs by runner/feed.
	Arrays []Array
}

// Len is the number of samples: x's first dimension. A file without x
// counts y's labels; without either, Len is the largest first dimension
// of its arrays (runner/feed decides which arrays hold samples: its
// Data.Len is exact).
func (d *Dataset) Len() int {
	switch {
	case d.Shape != nil:
		return d.Shape[0]
	case d.Labels != nil:
		return len(d.Labels)
	}
	n := 0
	for _, a := range d.Arrays {
		if len(a.Shape) > 0 {
			n = max(n, a.Shape[0])
		}
	}
	return n
}

// Array returns the array of the file named name.
func (d *Dataset) Array(name string) (Array, bool) {
	for _, a := range d.Arrays {
		if a.Name == name {
			return a, true
		}
	}
	return Array{}, false
}

// XArray is x, the samples of a single-input model, in its own element
// type: the array XName (or "x") names, else X.
func (d *Dataset) XArray() (Array, bool) {
	name := d.xName()
	if a, ok := d.Array(name); ok {
		return a, true
	}
	if d.Shape == nil || d.X == nil {
		return Array{}, false
	}
	return Array{Name: name, Shape: d.Shape, Data: d.X}, true
}

func (d *Dataset) xName() string {
	if d.XName != "" {
		return d.XName
	}
	return "x"
}

// Names lists the file's arrays, y included (x first when only X holds
// it).
func (d *Dataset) Names() []string {
	var names []string
	if _, ok := d.Array(d.xName()); !ok && d.Shape != nil {
		names = append(names, d.xName())
	}
	for _, a := range d.Arrays {
		names = append(names, a.Name)
	}
	if d.Labels != nil {
		names = append(names, "y")
	}
	return names
}

// SampleShape is the shape of one sample (Shape without its first dimension).
func (d *Dataset) SampleShape() []int { return d.Shape[1:] }

// SampleSize is the number of values in one sample.
func (d *Dataset) SampleSize() int {
	n := 1
	for _, s := range d.Shape[1:] {
		n *= s
	}
	return n
}

// Sample returns sample i of x as float32: shared with X when x is
// float32, else converted into a new slice.
func (d *Dataset) Sample(i int) []float32 { return d.Float32s(i, i+1) }

// Float32s returns samples [from, to) of x as float32, in C order:
// shared with X when x is float32, else converted into a new slice.
func (d *Dataset) Float32s(from, to int) []float32 {
	n := d.SampleSize()
	if d.X != nil {
		return d.X[from*n : to*n : to*n]
	}
	out := make([]float32, (to-from)*n)
	d.samplesInto(out, from, to)
	return out
}

// SampleInto writes sample i of x into dst (SampleSize values) as
// float32.
func (d *Dataset) SampleInto(dst []float32, i int) {
	d.samplesInto(dst[:d.SampleSize()], i, i+1)
}

func (d *Dataset) samplesInto(dst []float32, from, to int) {
	n := d.SampleSize()
	if d.X != nil {
		copy(dst, d.X[from*n:to*n])
		return
	}
	x, ok := d.XArray()
	if !ok {
		panic(fmt.Sprintf("dataset %s: no x to read samples from", d.Name))
	}
	lo, hi := from*n, to*n
	switch v := x.Data.(type) {
	case []float32:
		copy(dst, v[lo:hi])
	case []float64:
		floatsInto(dst, v[lo:hi], func(p float64) float32 { return float32(p) })
	case []float16.Float16:
		floatsInto(dst, v[lo:hi], float16.Float16.Float32)
	case []bool:
		floatsInto(dst, v[lo:hi], func(p bool) float32 {
			if p {
				return 1
			}
			return 0
		})
	case []uint8:
		floatsInto(dst, v[lo:hi], func(p uint8) float32 { return float32(p) })
	case []int8:
		floatsInto(dst, v[lo:hi], func(p int8) float32 { return float32(p) })
	case []uint16:
		floatsInto(dst, v[lo:hi], func(p uint16) float32 { return float32(p) })
	case []int16:
		floatsInto(dst, v[lo:hi], func(p int16) float32 { return float32(p) })
	case []uint32:
		floatsInto(dst, v[lo:hi], func(p uint32) float32 { return float32(p) })
	case []int32:
		floatsInto(dst, v[lo:hi], func(p int32) float32 { return float32(p) })
	case []uint64:
		floatsInto(dst, v[lo:hi], func(p uint64) float32 { return float32(p) })
	case []int64:
		floatsInto(dst, v[lo:hi], func(p int64) float32 { return float32(p) })
	default:
		panic(fmt.Sprintf("dataset %s: x holds %T", d.Name, x.Data))
	}
}

func floatsInto[T any](dst []float32, src []T, f func(T) float32) {
	for i, v := range src {
		dst[i] = f(v)
	}
}

// Take returns the first n samples of x and y (all of them if there are
// fewer), sharing memory with d. The selection is deterministic: the same
// file always gives the same calibration subset. Of the other arrays
// only x is cut (runner/feed's Data.Take cuts every array that holds
// samples).
func (d *Dataset) Take(n int) *Dataset {
	n = max(0, min(n, d.Len()))
	out := &Dataset{Name: d.Name, XType: d.XType, XName: d.XName}
	if d.Shape != nil {
		out.Shape = append([]int{n}, d.Shape[1:]...)
		if d.X != nil {
			out.X = d.X[:n*d.SampleSize()]
		}
	}
	if d.Labels != nil {
		out.Labels = d.Labels[:n]
	}
	for _, a := range d.Arrays {
		if a.Name == d.xName() && len(a.Shape) > 0 {
			a = a.Slice(0, min(n, a.Shape[0]))
		}
		out.Arrays = append(out.Arrays, a)
	}
	return out
}

// Batch is a run of consecutive samples.
type Batch struct {
	// Start is the index of the first sample in the dataset.
	Start int
	// Shape is [samples in this batch, sample dims...].
	Shape []int
	// X shares memory with the dataset when x is float32 (else it is
	// converted); Labels shares memory, and is nil when the dataset has
	// none.
	X      []float32
	Labels []int64
}

// Len is the number of samples in the batch.
func (b Batch) Len() int { return b.Shape[0] }

// Batches yields the samples in order, size at a time; the last batch holds
// what is left and may be smaller. size must be positive.
func (d *Dataset) Batches(size int) iter.Seq[Batch] {
	if size <= 0 {
		panic(fmt.Sprintf("dataset: batch size %d, want > 0", size))
	}
	return func(yield func(Batch) bool) {
		for start := 0; start < d.Len(); start += size {
			end := min(start+size, d.Len())
			b := Batch{
				Start: start,
				Shape: append([]int{end - start}, d.Shape[1:]...),
				X:     d.Float32s(start, end),
			}
			if d.Labels != nil {
				b.Labels = d.Labels[start:end:end]
			}
			if !yield(b) {
				return
			}
		}
	}
}
