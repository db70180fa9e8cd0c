package dataset

import (
	"fmt"
	"iter"
)

// Dataset is a set of samples ready to feed a model: float32 inputs in C
// order and, when the file has them, integer class labels.
type Dataset struct {
	// Name is the file or URI it came from, for messages.
	Name string
	// Shape of the inputs: [N, sample dims...].
	Shape []int
	// X holds N * SampleSize() values.
	X []float32
	// Labels holds N class labels, or is nil.
	Labels []int64
}

// Len is the number of samples.
func (d *Dataset) Len() int { return d.Shape[0] }

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

// Take returns the first n samples (all of them if there are fewer), sharing
// memory with d. The selection is deterministic: the same file always gives
// the same calibration subset.
func (d *Dataset) Take(n int) *Dataset {
	n = max(0, min(n, d.Len()))
	out := &Dataset{Name: d.Name, Shape: append([]int{n}, d.Shape[1:]...)}
	out.X = d.X[:n*d.SampleSize()]
	if d.Labels != nil {
		out.Labels = d.Labels[:n]
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
