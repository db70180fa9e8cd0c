package dataset

import (
	"fmt"
	"iter"
)

// Dataset is a set of samples ready to feed a model: the inputs x as
// float32 in C order, every array of the file in its own element type
// (one per model input for a model with several), and, when the file has
// them, integer class labels.
type Dataset struct {
	// Name is the file or URI it came from, for messages.
	Name string
	// Shape of the inputs x: [N, sample dims...]; nil when the file has
	// no x.
	Shape []int
	// X holds N * SampleSize() values: x as float32 (nil without x).
	X []float32
	// XType is the element type x was stored in ("uint8"); empty means
	// float32.
	XType string
	// Labels holds N class labels (y), or is nil.
	Labels []int64
	// Arrays holds the other arrays of the file (not y), in file order
	// and in their own element types, and x too when X cannot hold its
	// values exactly (64-bit integers, float64). Which arrays hold samples
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

// Names lists the file's arrays, y included (x first when X holds it).
func (d *Dataset) Names() []string {
	var names []string
	if _, ok := d.Array("x"); !ok && d.Shape != nil {
		names = append(names, "x")
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

// Sample returns sample i's values (shared, not copied).
func (d *Dataset) Sample(i int) []float32 {
	n := d.SampleSize()
	return d.X[i*n : (i+1)*n : (i+1)*n]
}

// Take returns the first n samples of x and y (all of them if there are
// fewer), sharing memory with d. The selection is deterministic: the same
// file always gives the same calibration subset. Of the other arrays
// only x is cut (runner/feed's Data.Take cuts every array that holds
// samples).
func (d *Dataset) Take(n int) *Dataset {
	n = max(0, min(n, d.Len()))
	out := &Dataset{Name: d.Name, XType: d.XType}
	if d.Shape != nil {
		out.Shape = append([]int{n}, d.Shape[1:]...)
		out.X = d.X[:n*d.SampleSize()]
	}
	if d.Labels != nil {
		out.Labels = d.Labels[:n]
	}
	for _, a := range d.Arrays {
		if a.Name == "x" && len(a.Shape) > 0 {
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
	// X and Labels share memory with the dataset; Labels is nil when the
	// dataset has none.
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
		n := d.SampleSize()
		for start := 0; start < d.Len(); start += size {
			end := min(start+size, d.Len())
			b := Batch{
				Start: start,
				Shape: append([]int{end - start}, d.Shape[1:]...),
				X:     d.X[start*n : end*n : end*n],
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
