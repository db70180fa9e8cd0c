package quantize

import (
	"io"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
)

// datasetCalibration feeds a dataset's samples to one model input.
type datasetCalibration struct {
	d     *dataset.Dataset
	input string
	size  int
	next  int
}

// FromDataset returns a Calibration that feeds d's samples, batchSize at a
// time, to the model input named input. d must already fit the input
// (dataset.Fit).
func FromDataset(d *dataset.Dataset, input string, batchSize int) Calibration {
	return &datasetCalibration{d: d, input: input, size: max(batchSize, 1)}
}

// Next implements Calibration.
func (c *datasetCalibration) Next() (map[string]*onnx.Tensor, error) {
	if c.next >= c.d.Len() {
		return nil, io.EOF
	}
	end := min(c.next+c.size, c.d.Len())
	dims := []int64{int64(end - c.next)}
	for _, s := range c.d.SampleShape() {
		dims = append(dims, int64(s))
	}
	n := c.d.SampleSize()
	t := onnx.NewTensor(dims, c.d.X[c.next*n:end*n])
	c.next = end
	return map[string]*onnx.Tensor{c.input: t}, nil
}
