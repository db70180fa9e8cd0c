package feed

import (
	"io"

	"github.com/kompress/kompress/runner/onnx"
)

// Remainder says what becomes of the last samples when they cannot fill
// a batch the model fixes. With a dynamic batch the last batch simply
// holds what is left.
type Remainder int

const (
	// Pad repeats the last sample up to the batch size: every sample is
	// run, and the padding's results are not counted (Span.N).
	// Evaluation pads.
	Pad Remainder = iota
	// Drop leaves the samples out. Calibration drops.
	Drop
)

// Span is one batch: samples Start .. Start+N-1 of the data, fed as Size
// samples (Size > N when copies of the last one pad a fixed batch).
type Span struct {
	Start, N, Size int
}

// Samples lists the indexes the batch feeds, padding included.
func (s Span) Samples() []int {
	idx := make([]int, 0, s.Size)
	for i := s.Start; i < s.Start+s.N; i++ {
		idx = append(idx, i)
	}
	for len(idx) < s.Size {
		idx = append(idx, s.Start+s.N-1)
	}
	return idx
}

// Plan cuts n samples into batches of size, in order. When the model
// fixes the batch (fixed), the last batch is padded to size or dropped as
// last says; else it holds what is left.
func Plan(n, size int, fixed bool, last Remainder) []Span {
	size = max(size, 1)
	var spans []Span
	for start := 0; start < n; start += size {
		m := min(size, n-start)
		s := Span{Start: start, N: m, Size: m}
		if fixed && m < size {
			if last == Drop {
				break
			}
			s.Size = size
		}
		spans = append(spans, s)
	}
	return spans
}

// BatchSize is the batch a model is fed: the batch its inputs fix on
// dimension 0 (fixed is then true; every data, a model's and its
// source's, must agree: mnist-8 takes exactly 1), else preferred (at
// least 1), lowered when maxBytes > 0 so that one batch of the first
// data's sample inputs takes at most maxBytes (big images go a few at a
// time so that activations stay small).
func BatchSize(preferred, maxBytes int, ds ...*Data) (size int, fixed bool, err error) {
	b, err := FixedBatch(ds...)
	if err != nil {
		return 0, false, err
	}
	if b > 0 {
		return b, true, nil
	}
	size = max(preferred, 1)
	if maxBytes > 0 && len(ds) > 0 && ds[0] != nil {
		size = max(1, min(size, maxBytes/max(ds[0].sampleBytes(), 1)))
	}
	return size, false, nil
}

// Batches returns the calibration batches of the data: preferred samples
// at a time, or the batch the model fixes, with samples that cannot fill
// a last fixed batch left out.
func (d *Data) Batches(preferred int) (Calibration, error) {
	size, fixed, err := BatchSize(preferred, 0, d)
	if err != nil {
		return nil, err
	}
	return &spanBatches{d: d, spans: Plan(d.Len(), size, fixed, Drop)}, nil
}

// spanBatches is a Calibration over a data's batches.
type spanBatches struct {
	d     *Data
	spans []Span
	next  int
}

// Next implements Calibration.
func (b *spanBatches) Next() (map[string]*onnx.Tensor, error) {
	if b.next >= len(b.spans) {
		return nil, io.EOF
	}
	b.next++
	return b.d.Tensors(b.spans[b.next-1].Samples())
}
