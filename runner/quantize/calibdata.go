package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"

	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
)

// Calibration supplies the model inputs static quantization calibrates on.
type Calibration interface {
	// Next returns the next batch, input name to tensor, every tensor with
	// the batch along dimension 0; io.EOF after the last batch.
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

// collectRanges runs the float model over at most samples calibration
// samples with the named tensors as extra outputs and returns each tensor's
// calibrated range and the number of samples seen.
func collectRanges(ctx context.Context, m *onnx.Model, tensors []string, calib Calibration, c Collector, samples int) (map[string]Range, int, error) {
	if calib == nil {
		return nil, 0, errors.New("static quantization needs calibration data (the job's dataset)")
	}
	probe := m.Clone()
	g := probe.Proto.GetGraph()
	have := map[string]bool{}
	for _, vi := range g.GetOutput() {
		have[vi.GetName()] = true
	}
	for _, name := range tensors {
		if !have[name] {
			g.Output = append(g.Output, onnx.ValueInfo(name, onnx.Float, nil))
			have[name] = true
		}
	}
	b, err := probe.Bytes()
	if err != nil {
		return nil, 0, err
	}
	sess, err := ort.NewSession(m.Name+" (calibration)", b, ort.Options{})
	if err != nil {
		return nil, 0, err
	}
	defer sess.Close()
	seen := 0
	for seen < samples {
		if err := ctx.Err(); err != nil {
			return nil, seen, err
		}
		batch, err := calib.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, seen, fmt.Errorf("calibration data: %w", err)
		}
		batch, n, err := truncateBatch(batch, samples-seen)
		if err != nil {
			return nil, seen, fmt.Errorf("calibration data: %w", err)
		}
		out, err := sess.Run(batch)
		if err != nil {
			return nil, seen, fmt.Errorf("calibration run: %w", err)
		}
		for _, name := range tensors {
			data, err := out[name].Float32s()
			if err != nil {
				return nil, seen, fmt.Errorf("calibration: tensor %q: %w", name, err)
			}
			c.Collect(name, data)
		}
		seen += n
	}
	if seen == 0 {
		return nil, 0, errors.New("calibration data is empty: static quantization needs at least one sample")
	}
	return c.Ranges(), seen, nil
}

// truncateBatch keeps at most limit samples (dimension 0) of every input
// and returns the batch size.
func truncateBatch(batch map[string]*onnx.Tensor, limit int) (map[string]*onnx.Tensor, int, error) {
	names := make([]string, 0, len(batch))
	for name := range batch {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, 0, errors.New("a batch has no inputs")
	}
	n := -1
	for _, name := range names {
		t := batch[name]
		if len(t.Dims) == 0 {
			return nil, 0, fmt.Errorf("input %q is a scalar: batches need the samples along dimension 0", name)
		}
		if n >= 0 && int(t.Dims[0]) != n {
			return nil, 0, fmt.Errorf("input %q has %d samples, input %q has %d", name, t.Dims[0], names[0], n)
		}
		n = int(t.Dims[0])
	}
	if n <= limit {
		return batch, n, nil
	}
	out := make(map[string]*onnx.Tensor, len(batch))
	for name, t := range batch {
		inner := t.Len() / int(t.Dims[0])
		dims := append([]int64{int64(limit)}, t.Dims[1:]...)
		data := reflect.ValueOf(t.Data).Slice(0, limit*inner).Interface()
		out[name] = &onnx.Tensor{DType: t.DType, Dims: dims, Data: data}
	}
	return out, limit, nil
}
