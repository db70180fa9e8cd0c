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

// calibration is what a calibration run yields.
type calibration struct {
	ranges  map[string]Range
	samples int
	// held are the first batches, kept to measure fidelity.
	held []map[string]*onnx.Tensor
}

// calibrate runs the float model over at most samples calibration samples
// with the named tensors as extra outputs, and returns each tensor's
// calibrated range, the number of samples seen and the first batches.
func calibrate(ctx context.Context, m *onnx.Model, tensors []string, calib Calibration, c Collector, samples int) (*calibration, error) {
	if calib == nil {
		return nil, errors.New("static quantization needs calibration data (the job's dataset)")
	}
	sess, err := probeSession(m, tensors, " (calibration)")
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	cal := &calibration{}
	seen := 0
	for seen < samples {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		batch, err := calib.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("calibration data: %w", err)
		}
		batch, n, err := truncateBatch(batch, samples-seen)
		if err != nil {
			return nil, fmt.Errorf("calibration data: %w", err)
		}
		out, err := sess.Run(batch)
		if err != nil {
			return nil, fmt.Errorf("calibration run: %w", err)
		}
		for _, name := range tensors {
			data, err := out[name].Float32s()
			if err != nil {
				return nil, fmt.Errorf("calibration: tensor %q: %w", name, err)
			}
			c.Collect(name, data)
		}
		if len(cal.held) < heldBatches {
			cal.held = append(cal.held, batch)
		}
		seen += n
	}
	if seen == 0 {
		return nil, errors.New("calibration data is empty: static quantization needs at least one sample")
	}
	cal.ranges, cal.samples = c.Ranges(), seen
	return cal, nil
}

// probeSession loads m into ONNX Runtime with the named tensors as extra
// outputs.
func probeSession(m *onnx.Model, tensors []string, label string) (*ort.Session, error) {
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
		return nil, err
	}
	return ort.NewSession(m.Name+label, b, ort.Options{})
}

// runBatches runs m on each batch and returns the outputs.
func runBatches(m *onnx.Model, batches []map[string]*onnx.Tensor) ([]map[string]*onnx.Tensor, error) {
	sess, err := probeSession(m, nil, "")
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	var outs []map[string]*onnx.Tensor
	for _, b := range batches {
		out, err := sess.Run(b)
		if err != nil {
			return nil, err
		}
		outs = append(outs, out)
	}
	return outs, nil
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
	// Scalar inputs (flags, a loop count) are fed as they are; the others
	// hold the samples along dimension 0.
	n, first := -1, ""
	for _, name := range names {
		t := batch[name]
		if len(t.Dims) == 0 {
			continue
		}
		if n >= 0 && int(t.Dims[0]) != n {
			return nil, 0, fmt.Errorf("input %q has %d samples, input %q has %d", name, t.Dims[0], first, n)
		}
		n, first = int(t.Dims[0]), name
	}
	if n < 0 {
		n = 1 // only scalars: one sample
	}
	if n <= limit {
		return batch, n, nil
	}
	out := make(map[string]*onnx.Tensor, len(batch))
	for name, t := range batch {
		if len(t.Dims) == 0 {
			out[name] = t
			continue
		}
		inner := t.Len() / int(t.Dims[0])
		dims := append([]int64{int64(limit)}, t.Dims[1:]...)
		data := reflect.ValueOf(t.Data).Slice(0, limit*inner).Interface()
		out[name] = &onnx.Tensor{DType: t.DType, Dims: dims, Data: data}
	}
	return out, limit, nil
}
