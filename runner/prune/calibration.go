package prune

import (
	"fmt"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// Calibration supplies the model inputs hessian pruning calibrates on: the
// same iterator static quantization reads (feed.Data.Batches makes one
// from a dataset).
type Calibration = feed.Calibration

// calibSet is the calibration data read once and kept for every pass.
type calibSet struct {
	batches []map[string]*onnx.Tensor
	samples int
}

// readCalibration reads up to limit samples, checks every batch against
// the model's inputs and, when the model fixes its batch dimension, cuts
// the batches to that size (samples that do not fill a last batch are
// left out): feed.Collect, its errors ErrCalibration.
func readCalibration(m *onnx.Model, calib Calibration, limit int) (*calibSet, error) {
	if calib == nil {
		return nil, fmt.Errorf("%w: method hessian needs calibration data (the job's dataset)", ErrCalibration)
	}
	batches, samples, err := feed.Collect(feed.Inputs(m), calib, limit)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCalibration, err)
	}
	return &calibSet{batches: batches, samples: samples}, nil
}

// calibrationFrom feeds up to samples samples of data to the model's
// inputs, calibrationBatch at a time (or the batch the model fixes).
func calibrationFrom(m *onnx.Model, data *dataset.Dataset, samples int) (Calibration, error) {
	if data == nil {
		return nil, fmt.Errorf("%w: method hessian calibrates on the job's dataset (spec.dataset), and there is none", ErrCalibration)
	}
	d, err := feed.FromDataset(feed.Inputs(m), data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCalibration, err)
	}
	c, err := d.Take(samples).Batches(calibrationBatch)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCalibration, err)
	}
	return c, nil
}

// fitData checks that data can feed the model's inputs (feed.Fit) and
// returns it in the inputs' shapes.
func fitData(m *onnx.Model, data *dataset.Dataset) (*dataset.Dataset, error) {
	fitted, err := feed.Fit(feed.Inputs(m), data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCalibration, err)
	}
	return fitted, nil
}
