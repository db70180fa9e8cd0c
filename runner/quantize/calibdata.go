package quantize

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// Calibration supplies the model inputs static quantization calibrates
// on: feed.Data.Batches makes one from a dataset.
type Calibration = feed.Calibration

// NewBatches returns a Calibration that yields the given batches once.
func NewBatches(batches ...map[string]*onnx.Tensor) Calibration {
	return feed.NewBatches(batches...)
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
	sess, err := feed.Open(m, feed.Options{Name: m.Name + " (calibration)", Expose: tensors})
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
		batch, n, err := feed.Truncate(feed.Inputs(m), batch, samples-seen)
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

// runBatches runs m on each batch and returns the outputs.
func runBatches(m *onnx.Model, batches []map[string]*onnx.Tensor) ([]map[string]*onnx.Tensor, error) {
	sess, err := feed.Open(m, feed.Options{})
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
