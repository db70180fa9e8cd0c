package runner

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/quantize"
)

// calibrationBatch is the batch size calibration feeds ONNX Runtime: large
// enough to amortize a Run call, small enough for big activations.
const calibrationBatch = 32

func init() {
	register(v1alpha1.StageTypeQuantize, Stage{Describe: describeQuantize, Transform: quantizeStage})
}

func describeQuantize(s pipeline.StageSpec) string {
	return fmt.Sprintf("method=%s bits=%d", s.Quantize.Method, s.Quantize.Bits)
}

func quantizeStage(ctx context.Context, in *StageInput) (*StageOutput, error) {
	opts, err := quantizeOptions(*in.Task.Stage.Quantize)
	if err != nil {
		return nil, err
	}
	opts.Calibration.Shards = in.Task.Shards
	opts.Calibration.Exchange = in.Exchange
	opts.Calibration.Layers, opts.Calibration.OriginalLayerInputs = in.Task.Layers, in.Task.OriginalLayerInputs
	opts.Calibration.LayerPod = in.LayerPod
	var calib quantize.Calibration
	guarded := opts.Method == quantize.WeightOnly && opts.Bits == 4 && opts.SensitiveLayers != quantize.SensitiveInt4
	switch {
	case opts.Method == quantize.Static && in.Data == nil:
		return nil, BadInputf("quantize.method static calibrates on spec.dataset, and the job has none")
	case opts.Method == quantize.Static, (guarded || opts.Algorithm == quantize.GPTQ) && in.Data != nil:
		// Static and GPTQ calibrate on the dataset; the 4-bit guard
		// measures on it (on synthesized inputs without one).
		data, err := feed.FromDataset(feed.Inputs(in.Model), in.Data)
		if err != nil {
			return nil, BadInput(err)
		}
		if calib, err = data.Take(opts.Calibration.Samples).Batches(calibrationBatch); err != nil {
			return nil, BadInput(err)
		}
	}
	// The runner loaded the model for this stage only: quantize it in place.
	out, report, err := quantize.QuantizeInPlace(ctx, in.Model, opts, calib)
	if err != nil {
		return nil, err
	}
	in.Log.Info("quantized", "summary", report.Summary())
	return &StageOutput{Model: out, Details: report, Warnings: report.Warnings}, nil
}
