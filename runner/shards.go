package runner

import (
	"context"
	"errors"
	"fmt"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/exchange"
)

// shardsDir is the directory, beside a stage's model, under which the
// indices of an Indexed Job exchange their partial statistics.
const shardsDir = "shards"

// shardExchange is where the stage's shards meet: nil without
// spec.parallelism, this process's workers (exchange.Local) for a task
// that is not Indexed, and object storage under the stage's cache key for
// one index of an Indexed Job (Options.ShardIndex).
func shardExchange(task, work pipeline.Task, o *Options) (exchange.Exchange, error) {
	switch {
	case task.Shards == 0:
		return nil, nil
	case !task.Indexed || task.LayerIndexed():
		// The pods of a layer-indexed Job are layer workers: each runs
		// the data shards as workers of its own (layerPod).
		return exchange.Local(task.Shards), nil
	case o.ShardIndex < 0 || o.ShardIndex >= task.Shards:
		return nil, BadTask(fmt.Errorf("this runner is index %d of an Indexed Job of task.shards %d pods: want an index in [0, %d)", o.ShardIndex, task.Shards, task.Shards))
	}
	return &exchange.Storage{
		Client: o.Storage, Prefix: pipeline.SiblingURI(work.OutputURI, shardsDir),
		Index: o.ShardIndex, Of: task.Shards, Wait: o.ShardWait, Done: work.ResultURI(), Log: o.Log,
	}, nil
}

// layerPod is this runner's index of an Indexed Job of layer workers
// (task.LayerIndexed), meeting the others under the stage's cache key as
// the data shards' indices do; nil for any other task.
func layerPod(task, work pipeline.Task, o *Options) (*exchange.Storage, error) {
	if !task.LayerIndexed() {
		return nil, nil
	}
	if o.ShardIndex < 0 || o.ShardIndex >= task.Layers {
		return nil, BadTask(fmt.Errorf("this runner is index %d of an Indexed Job of task.layers %d pods: want an index in [0, %d)", o.ShardIndex, task.Layers, task.Layers))
	}
	return &exchange.Storage{
		Client: o.Storage, Prefix: pipeline.SiblingURI(work.OutputURI, shardsDir),
		Index: o.ShardIndex, Of: task.Layers, Wait: o.ShardWait, Done: work.ResultURI(), Log: o.Log,
	}, nil
}

// handedOver is what an index above 0 of an Indexed Job of layer workers
// reports once its partial is committed (layerwise.ErrHandedOver).
func handedOver(task pipeline.Task, o *Options, res pipeline.Result) pipeline.Result {
	res.Message = fmt.Sprintf("index %d of %d shared its layers' partial; index 0 assembles and publishes the stage", o.ShardIndex, task.Layers)
	return res
}

// publishes reports whether this runner writes the stage's model and
// result: every runner but the indices above 0 of an Indexed Job, which
// only share their partial statistics.
func publishes(task pipeline.Task, o *Options) bool { return !task.Indexed || o.ShardIndex == 0 }

// sharedOnly is what an index that does not publish reports: it is done
// once the last round (the evaluation's) has every index's partial.
func sharedOnly(task pipeline.Task, o *Options, res pipeline.Result) pipeline.Result {
	res.Message = fmt.Sprintf("index %d of %d shared its partial statistics; index 0 publishes the stage", o.ShardIndex, task.Shards)
	return res
}

// finishedElsewhere turns exchange.ErrDone (the stage's result appeared
// while this index waited: another attempt finished it) into that result.
func finishedElsewhere(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string), res pipeline.Result, err error) (pipeline.Result, error) {
	if !errors.Is(err, exchange.ErrDone) {
		return res, err
	}
	cached, ok, lerr := lookup(ctx, task, work, o, step)
	if lerr != nil || !ok {
		return res, errors.Join(err, lerr)
	}
	return cached, nil
}

// dropPartials deletes the partials of an Indexed Job once its result is
// written: an index still waiting then finds the result (exchange.ErrDone).
// A partial left behind is harmless (content-addressed under the key).
func dropPartials(ctx context.Context, x exchange.Exchange, o *Options) {
	s, ok := x.(*exchange.Storage)
	if !ok || s == nil {
		return
	}
	if err := s.Delete(ctx); err != nil {
		o.Log.Warn("deleting the shards' partial statistics", "prefix", s.Prefix, "err", err)
	}
}
