package distill

import (
	"context"
	"fmt"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
)

// ortBatch is how many samples one ONNX Runtime call takes when the
// model's batch dimension is dynamic.
const ortBatch = 256

// outputs runs a model in ONNX Runtime over the first n samples of data
// and returns its first output, flattened to n·k values. A model whose
// batch dimension is fixed (mnist-8 takes exactly one sample) is fed that
// many samples per call (the last call padded), calls spread over threads
// goroutines on a one-thread session.
func outputs(ctx context.Context, name string, model []byte, data *dataset.Dataset, n, threads int) ([]float32, int, error) {
	sess, err := feed.OpenBytes(name, model, feed.Options{Threads: 1})
	if err != nil {
		return nil, 0, err
	}
	defer sess.Close()
	if len(sess.Inputs()) != 1 {
		return nil, 0, fmt.Errorf("%s has %d inputs; distillation feeds models with exactly one", name, len(sess.Inputs()))
	}
	d, err := feed.FromDataset(sess.Inputs(), data)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	d = d.Take(n)
	batch, fixed, err := feed.BatchSize(ortBatch, 0, d)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	spans := feed.Plan(d.Len(), batch, fixed, feed.Pad)
	first := sess.Outputs()[0].Name
	var (
		out []float32
		k   int
	)
	err = feed.Parallel(ctx, len(spans), threads, func(i int) ([]float32, error) {
		in, err := d.Tensors(spans[i].Samples())
		if err != nil {
			return nil, err
		}
		res, err := sess.Run(in)
		if err != nil {
			return nil, err
		}
		return res[first].Float32s()
	}, func(i int, vals []float32) error {
		sp := spans[i]
		kk := len(vals) / sp.Size
		switch {
		case out == nil:
			k = kk
			out = make([]float32, d.Len()*k)
		case kk != k:
			return fmt.Errorf("output %q changes size between batches", first)
		}
		copy(out[sp.Start*k:], vals[:sp.N*k])
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, 0, err
		}
		return nil, 0, fmt.Errorf("%s: %w", name, err)
	}
	return out, k, nil
}
