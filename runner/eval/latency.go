package eval

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/kompress/kompress/runner/feed"
)

// measureLatency times Session.Run at the spec's batch size (the model's
// own batch size when it fixes one) after WarmupRuns untimed runs. Samples
// are the data's first ones, repeated when the batch is larger.
func measureLatency(ctx context.Context, req Request, data *feed.Data, sess *feed.Session, rep *Report) error {
	batch := int(req.Spec.LatencyBatchSize)
	if batch == 0 {
		batch = DefaultLatencyBatchSize
	}
	fixed, err := feed.FixedBatch(data)
	if err != nil {
		return fmt.Errorf("%s: %w", req.name(), err)
	}
	if fixed > 0 {
		batch = fixed
	}
	runs := int(req.Spec.LatencyRuns)
	if runs == 0 {
		runs = DefaultLatencyRuns
	}
	idx := make([]int, batch)
	for i := range idx {
		idx[i] = i % data.Len()
	}
	in, err := data.Tensors(idx)
	if err != nil {
		return fmt.Errorf("%s: %w", req.name(), err)
	}
	times := make([]time.Duration, runs)
	for i := range WarmupRuns + runs {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if _, err := sess.Run(in); err != nil {
			return err
		}
		if i >= WarmupRuns {
			times[i-WarmupRuns] = time.Since(start)
		}
	}
	slices.Sort(times)
	rep.LatencyP50 = percentile(times, 0.50)
	rep.LatencyP95 = percentile(times, 0.95)
	rep.LatencyBatchSize = batch
	return nil
}

// percentile is the nearest-rank percentile of sorted durations: the
// smallest one that at least p of them do not exceed.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
