package feed

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"

	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
)

// Calibration supplies the batches a calibration reads (static
// quantization's ranges, hessian pruning's XᵀX): Data.Batches makes one
// from a dataset, NewBatches from batches in memory.
type Calibration interface {
	// Next returns the next batch, input name to tensor, every tensor that
	// holds samples with them along dimension 0 (scalars are fed as they
	// are); io.EOF after the last batch.
	Next() (map[string]*onnx.Tensor, error)
}

// Batches is a Calibration over batches held in memory.
type Batches struct {
	batches []map[string]*onnx.Tensor
	next    int
}

// NewBatches returns a Calibration that yields the given batches once.
func NewBatches(batches ...map[string]*onnx.Tensor) *Batches {
	return &Batches{batches: batches}
}

// Next implements Calibration.
func (b *Batches) Next() (map[string]*onnx.Tensor, error) {
	if b.next >= len(b.batches) {
		return nil, io.EOF
	}
	b.next++
	return b.batches[b.next-1], nil
}

// Truncate keeps at most limit samples (dimension 0) of every input of a
// batch for the model's inputs ins (nil: every tensor that is not a
// scalar holds samples) and returns the batch size. Tensors fed whole
// (scalars, a state [2,1,128] beside samples of another count) are kept
// as they are; a batch with no samples counts one.
func Truncate(ins []Input, batch map[string]*onnx.Tensor, limit int) (map[string]*onnx.Tensor, int, error) {
	n, whole, err := layout(ins, batch)
	if err != nil {
		return nil, 0, fault.BadInput(err)
	}
	if n <= limit {
		return batch, n, nil
	}
	return cut(batch, whole, 0, limit), limit, nil
}

// layout counts the samples of a batch and finds the tensors fed whole:
// scalars, and tensors of inputs that fix dimension 0 (a state [2,N,128])
// whose first dimension is not the number of samples the inputs with a
// dynamic first dimension hold. Every other tensor holds the samples
// along dimension 0, and they must agree.
func layout(ins []Input, batch map[string]*onnx.Tensor) (int, map[string]bool, error) {
	names := make([]string, 0, len(batch))
	for name := range batch {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return 0, nil, errors.New("a batch has no inputs")
	}
	fixes := map[string]bool{}
	for _, in := range ins {
		fixes[in.Name] = in.fixedBatch() > 0
	}
	whole := map[string]bool{}
	n, first := -1, ""
	count := func(name string, t *onnx.Tensor) error {
		if n >= 0 && int(t.Dims[0]) != n {
			return fmt.Errorf("input %q has %d samples, input %q has %d", name, t.Dims[0], first, n)
		}
		n, first = int(t.Dims[0]), name
		return nil
	}
	// Inputs with a dynamic first dimension say how many samples there
	// are; then those that fix it hold samples if they agree.
	for _, pass := range []bool{false, true} {
		for _, name := range names {
			t := batch[name]
			if len(t.Dims) == 0 {
				whole[name] = true
				continue
			}
			if fixes[name] != pass {
				continue
			}
			if pass && n >= 0 && int(t.Dims[0]) != n {
				whole[name] = true
				continue
			}
			if err := count(name, t); err != nil {
				return 0, nil, err
			}
		}
	}
	if n < 0 {
		n = 1 // only tensors fed whole: one sample
	}
	return n, whole, nil
}

// cut returns samples [from, to) of every tensor of a batch, sharing
// memory; tensors fed whole are kept as they are.
func cut(batch map[string]*onnx.Tensor, whole map[string]bool, from, to int) map[string]*onnx.Tensor {
	out := make(map[string]*onnx.Tensor, len(batch))
	for name, t := range batch {
		if len(t.Dims) == 0 || whole[name] {
			out[name] = t
			continue
		}
		out[name] = slice(t, from, to)
	}
	return out
}

// concat joins batches along dimension 0 (tensors fed whole are taken
// from the first).
func concat(parts []map[string]*onnx.Tensor, whole map[string]bool) map[string]*onnx.Tensor {
	if len(parts) == 1 {
		return parts[0]
	}
	out := map[string]*onnx.Tensor{}
	for name, first := range parts[0] {
		if len(first.Dims) == 0 || whole[name] {
			out[name] = first
			continue
		}
		data := reflect.MakeSlice(reflect.TypeOf(first.Data), 0, first.Len()*len(parts))
		n := int64(0)
		for _, p := range parts {
			data = reflect.AppendSlice(data, reflect.ValueOf(p[name].Data))
			n += p[name].Dims[0]
		}
		dims := append([]int64{n}, first.Dims[1:]...)
		out[name] = &onnx.Tensor{DType: first.DType, Dims: dims, Data: data.Interface()}
	}
	return out
}

// Collect reads up to limit samples from c, for a calibration that makes
// several passes over them (hessian pruning's waves): it checks every
// batch against the model's inputs (names, element types, shapes) and,
// when the model fixes its batch dimension, regroups the samples into
// batches of exactly that size (samples that do not fill a last batch are
// left out). It returns the batches and the number of samples in them.
func Collect(ins []Input, c Calibration, limit int) ([]map[string]*onnx.Tensor, int, error) {
	batches, samples, err := collect(ins, c, limit)
	return batches, samples, fault.BadInput(err)
}

func collect(ins []Input, c Calibration, limit int) ([]map[string]*onnx.Tensor, int, error) {
	fixed := 0
	for _, in := range ins {
		if b := in.fixedBatch(); b > 0 && !in.wholeMayHoldBatch() {
			fixed = b
		}
	}
	var (
		batches []map[string]*onnx.Tensor
		samples int
		pending []map[string]*onnx.Tensor // fixed batch: samples waiting to fill one
	)
	for n := 1; samples < limit; n++ {
		batch, err := c.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("batch %d: %v", n, err)
		}
		size, whole, err := checkBatch(ins, batch)
		if err != nil {
			return nil, 0, fmt.Errorf("batch %d: %v", n, err)
		}
		size = min(size, limit-samples-len(pending))
		if fixed == 0 {
			batches = append(batches, cut(batch, whole, 0, size))
			samples += size
			continue
		}
		for i := 0; i < size; i++ {
			pending = append(pending, cut(batch, whole, i, i+1))
			if len(pending) == fixed {
				batches = append(batches, concat(pending, whole))
				samples += fixed
				pending = pending[:0]
			}
		}
		if samples+len(pending) >= limit {
			break
		}
	}
	if samples == 0 {
		if fixed > 1 {
			return nil, 0, fmt.Errorf("fewer samples than the model's fixed batch of %d", fixed)
		}
		return nil, 0, errors.New("no samples")
	}
	return batches, samples, nil
}

// checkBatch compares a batch with the model's inputs and returns its
// number of samples and the tensors fed whole (layout).
func checkBatch(ins []Input, batch map[string]*onnx.Tensor) (int, map[string]bool, error) {
	want := map[string]bool{}
	for _, in := range ins {
		want[in.Name] = true
		t, ok := batch[in.Name]
		if !ok {
			return 0, nil, fmt.Errorf("no tensor for model input %q", in.Name)
		}
		if in.DType != onnx.Undefined && t.DType != in.DType {
			return 0, nil, fmt.Errorf("input %q is %v, the model takes %v", in.Name, t.DType, in.DType)
		}
		if in.Dims != nil && !fitsBatch(t.Dims, in.Dims) {
			return 0, nil, fmt.Errorf("input %q has shape %v, the model takes %s (batch first)", in.Name, t.Dims, in)
		}
	}
	var extra []string
	for name := range batch {
		if !want[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return 0, nil, fmt.Errorf("tensors %q are not inputs of the model", extra)
	}
	return layout(ins, batch)
}

// fitsBatch compares dims with a declared shape, the batch dimension
// excluded.
func fitsBatch(dims, declared []int64) bool {
	if len(dims) != len(declared) {
		return false
	}
	for i := 1; i < len(dims); i++ {
		if declared[i] > 0 && dims[i] != declared[i] {
			return false
		}
	}
	return true
}
