package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/layerwise"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/storage"
)

// Options tune Execute.
type Options struct {
	Storage *storage.Client
	Log     *slog.Logger
	// Progress receives every step of the stage (see Event).
	Progress func(Event)
	// AllowExec lets Custom stages run their command as a local process.
	AllowExec bool
	// Threads bounds ONNX Runtime's intra-op threads; 0 uses every core.
	Threads int
	// DatasetLimits bound what a dataset file may make the runner hold
	// (checked before anything is allocated); the zero value is
	// dataset.DefaultLimits. kompress reads them from the environment
	// (dataset.LimitsFromEnv).
	DatasetLimits dataset.Limits
	// ShardIndex is which index of an Indexed Job this runner is, for a
	// task with Indexed set (a pod reads it from JOB_COMPLETION_INDEX).
	ShardIndex int
	// ShardWait bounds how long an index waits for the others' partials
	// of one round (exchange.DefaultWait when 0).
	ShardWait time.Duration
}

func (o *Options) defaults() {
	if o.Storage == nil {
		o.Storage = storage.Default
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Progress == nil {
		o.Progress = func(Event) {}
	}
}

// Execute runs one stage task to a published artifact. The returned result
// is also what a failed stage reports: Reason and Message are set, Output is
// nil, and the error carries the exit code (ExitCode).
func Execute(ctx context.Context, task pipeline.Task, opts Options) (pipeline.Result, error) {
	opts.defaults()
	start := time.Now()
	res, err := executeRecovered(ctx, task, &opts)
	res.Version, res.Stage, res.CacheKey = pipeline.ContractVersion, task.Stage.Name, task.CacheKey
	res.DurationSeconds = strconv.FormatFloat(time.Since(start).Seconds(), 'f', 3, 64)
	if err != nil {
		res.Output = nil
		res.Reason = Reason(err)
		res.Message = fmt.Sprintf("stage %s: %v", task.Stage.Name, err)
	}
	return res, err
}

// executeRecovered is execute with a panic turned into a typed failure, so
// that a pod still reports why it stopped (see recovered).
func executeRecovered(ctx context.Context, task pipeline.Task, o *Options) (res pipeline.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			res, err = pipeline.Result{}, recovered(p, o.Log)
		}
	}()
	return execute(ctx, task, o)
}

func execute(ctx context.Context, task pipeline.Task, o *Options) (pipeline.Result, error) {
	if err := task.Validate(); err != nil {
		return pipeline.Result{}, BadTask(err)
	}
	if task.Select != nil {
		return executeSelect(ctx, task, o)
	}
	stage, err := stageOf(task.Stage.Type)
	if err != nil {
		return pipeline.Result{}, err
	}
	step := stepper(task, o.Progress)
	if stage.Execute != nil {
		if res, ok, err := lookup(ctx, task, task, o, step); err != nil || ok {
			return res, err
		}
		res, err := stage.Execute(ctx, task, o)
		return released(ctx, task, o, res, err)
	}
	// A task that does not pin what it reads is keyed by URIs: read the
	// blobs first and key the work by their content (Task.Resolve), so a
	// replaced file never reuses what the old one produced.
	var in inputs
	defer func() { in.close() }()
	work := task
	if !task.Pinned() {
		if in, err = readInputs(ctx, task, o, step); err != nil {
			return pipeline.Result{Input: in.ref}, err
		}
		work = task.Resolve(in.digests)
	}
	if res, ok, err := lookup(ctx, task, work, o, step); err != nil || ok {
		return res, err
	}
	if in.model == nil {
		if in, err = readInputs(ctx, task, o, step); err != nil {
			return pipeline.Result{Input: in.ref}, err
		}
	}
	if err := ort.Init(); err != nil {
		// Checked before the transform: every output must run in ONNX
		// Runtime before it is published. The runner's installation is at
		// fault, not the task, so the error must not blame the model.
		return pipeline.Result{Input: in.ref}, &Error{Code: pipeline.ExitFailure, Reason: "RuntimeUnavailable", Err: err}
	}
	if in.shards, err = shardExchange(task, work, o); err != nil {
		return pipeline.Result{Input: in.ref}, err
	}
	if in.layerPod, err = layerPod(task, work, o); err != nil {
		return pipeline.Result{Input: in.ref}, err
	}
	step(PhaseTransform, fmt.Sprintf("%s %s", task.Stage.Type, stage.Describe(task.Stage)))
	out, err := stage.Transform(ctx, &StageInput{
		Task: work, Model: in.model, Source: in.source, Data: in.data, Exchange: in.shards, LayerPod: in.layerPod,
		Storage: o.Storage, DatasetLimits: o.DatasetLimits, Log: o.Log,
		Progress: func(done, total int64, unit string) {
			o.Progress(Event{Stage: task.Stage.Name, Index: task.Index, Of: task.Stages, Phase: PhaseTransform, Done: done, Total: total, Unit: unit})
		},
	})
	if errors.Is(err, layerwise.ErrHandedOver) {
		return handedOver(task, o, pipeline.Result{Input: in.ref}), nil
	}
	if err != nil {
		return finishedElsewhere(ctx, task, work, o, step, pipeline.Result{Input: in.ref}, err)
	}
	if d := in.stored; d != nil {
		o.Log.Info("external data read by range requests", "uri", task.Input.URI, "bytes", d.rangeBytes.Load())
	}
	res, err := publish(ctx, task, work, o, step, in, out)
	if err != nil {
		return finishedElsewhere(ctx, task, work, o, step, res, err)
	}
	return released(ctx, work, o, res, err)
}

// lookup returns the result an earlier run published for work, with
// release.json written if the stage is the last.
func lookup(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string)) (pipeline.Result, bool, error) {
	step(PhaseCache, "looking for "+work.ResultURI())
	res, ok, err := cachedResult(ctx, task, work, o.Storage)
	if err != nil || !ok {
		return res, ok, err
	}
	res, err = released(ctx, work, o, res, nil)
	return res, true, err
}

// released writes release.json beside a final stage's committed result.
func released(ctx context.Context, work pipeline.Task, o *Options, res pipeline.Result, err error) (pipeline.Result, error) {
	if err != nil {
		return res, err
	}
	return res, writeRelease(ctx, work, o, res)
}

// inputs is what a stage reads before it runs.
type inputs struct {
	ref   pipeline.Ref
	model *onnx.Model
	// source is the fidelity reference: its bytes, or, when it has
	// external data, the model read from its files (sourceFiles).
	source      []byte
	sourceFiles *onnx.Model
	sourceBytes int64
	data        *dataset.Dataset
	// shards is where the stage's shards meet (shardExchange), nil
	// without spec.parallelism.
	shards exchange.Exchange
	// layerPod is where the indices of a layer-indexed Job hand their
	// partials to index 0 (layerPod), nil for any other task.
	layerPod *exchange.Storage
	// digests of what was read, to key a task that pinned none.
	digests pipeline.Digests
	// stored reads the input's external data, if it has some.
	stored *storedData
	// scratch is the local folder of the stage's files (external data
	// copied for ONNX Runtime, the output before it is uploaded).
	scratch string
}

// close removes the stage's local files.
func (in *inputs) close() {
	if in.scratch != "" {
		os.RemoveAll(in.scratch)
	}
}

func readInputs(ctx context.Context, task pipeline.Task, o *Options, step func(Phase, string)) (in inputs, err error) {
	if in.scratch, err = os.MkdirTemp("", "kompress-stage-"); err != nil {
		return in, fmt.Errorf("making the stage's local folder: %w", err)
	}
	defer func() {
		if err != nil {
			in.close()
			in.scratch = ""
		}
	}()
	step(PhaseRead, "reading "+task.Input.URI)
	// The input that is also the source is run by ONNX Runtime (the
	// reference of fidelity): its data files are copied to local disk.
	same := task.Source.URI == task.Input.URI
	inm, err := openStoredModel(ctx, o.Storage, task.Input, filepath.Join(in.scratch, "input"), task.Stage.StageBody, same)
	if err != nil {
		return in, err
	}
	in.ref = pipeline.Ref{URI: task.Input.URI, Digest: inm.digest}
	in.digests = pipeline.Digests{Input: inm.digest, Source: inm.digest}
	in.model, in.stored = inm.model, inm.data
	src := inm
	if !same {
		step(PhaseRead, "reading the source model "+task.Source.URI)
		if src, err = openStoredModel(ctx, o.Storage, task.Source, filepath.Join(in.scratch, "source"), task.Stage.StageBody, true); err != nil {
			return in, err
		}
		in.digests.Source = src.digest
	}
	if err := in.setSource(src); err != nil {
		return in, err
	}
	if task.Dataset == nil {
		return in, nil
	}
	step(PhaseRead, "reading the dataset "+task.Dataset.URI)
	ds, digest, err := readDataset(ctx, o.Storage, task.Dataset.URI, task.Dataset.Digest, o.DatasetLimits)
	if err != nil {
		return in, err
	}
	in.digests.Dataset = digest
	if in.data, err = feed.Fit(feed.Inputs(in.model), ds); err != nil {
		return in, BadInput(err)
	}
	if err := pipeline.CheckShards(max(task.Shards, 1), in.data.Len()); err != nil {
		return in, BadInput(err)
	}
	return in, nil
}

// setSource keeps the fidelity reference: its bytes, or a model of its
// own (the input's is changed by the stage) reading the same files.
func (in *inputs) setSource(sm storedModel) error {
	in.sourceBytes = sm.size
	var err error
	switch {
	case sm.path != "":
		in.sourceFiles, err = onnx.OpenFile(sm.path)
	case sm.data == nil:
		in.source = sm.raw
	default:
		in.sourceFiles, err = onnx.OpenSource(sm.raw, sm.model.Name, sm.data)
	}
	return err
}

// readDataset reads and parses a dataset within lim: a file bigger than
// any .npz within them is refused before it is read, and the arrays are
// checked against them before they are allocated (dataset.Limits).
func readDataset(ctx context.Context, st *storage.Client, uri, digest string, lim dataset.Limits) (*dataset.Dataset, string, error) {
	data, obj, err := st.ReadAllAtMost(ctx, uri, digest, lim.FileBytes())
	if tl, ok := errors.AsType[*storage.TooLargeError](err); ok {
		return nil, "", BadInput(lim.FileTooLarge(uri, tl.Size))
	}
	if err != nil {
		return nil, "", err
	}
	ds, err := lim.Load(uri, data)
	if err != nil {
		return nil, "", BadInput(err)
	}
	return ds, obj.Digest, nil
}

// loadModel parses a model the stage reads. Every model kompress hands to
// ONNX Runtime goes through it first: onnx.Load refuses what ONNX Runtime
// must not be given from memory, such as external data paths it would
// resolve against the runner's working directory.
func loadModel(raw []byte, uri string) (*onnx.Model, error) {
	m, err := onnx.Load(raw)
	if err != nil {
		return nil, BadInputf("%s is not a usable ONNX model: %w", uri, err)
	}
	m.Name = uri
	return m, nil
}

// readModel reads and validates a model that is run as it is (the
// fidelity reference, a distillation teacher) and returns its bytes and
// digest.
func readModel(ctx context.Context, st *storage.Client, ref pipeline.Ref) ([]byte, string, error) {
	raw, obj, err := st.ReadAll(ctx, ref.URI, ref.Digest)
	if err != nil {
		return nil, "", err
	}
	if _, err := loadModel(raw, ref.URI); err != nil {
		return nil, "", err
	}
	return raw, obj.Digest, nil
}

// publish proves the model loads and runs in ONNX Runtime while measuring
// it, then writes it and result.json, write-once: a model ONNX Runtime
// refuses is never published. A model already at the URI (a run killed
// between the two writes) is adopted rather than replaced: writes are
// atomic, so it is complete; it is measured if its bytes differ from ours.
func publish(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string), in inputs, out *StageOutput) (pipeline.Result, error) {
	res := pipeline.Result{Input: in.ref}
	if out.Model.WantsExternalData() {
		art, ev, err := publishFiles(ctx, task, work, o, step, in, out)
		if err != nil {
			return res, err
		}
		if art == nil {
			return sharedOnly(task, o, res), nil
		}
		return published(ctx, task, work, o, step, in, res, *art, ev, out)
	}
	model, err := out.Model.Bytes()
	if err != nil {
		return res, fmt.Errorf("serializing the %s output: %w", task.Stage.Type, err)
	}
	step(PhaseEvaluate, "loading, running and measuring the output with ONNX Runtime")
	ev, err := evaluate(ctx, work, o, in, output{bytes: model})
	if err != nil {
		return res, err
	}
	if !publishes(task, o) {
		return sharedOnly(task, o, res), nil
	}
	step(PhaseWrite, "writing "+work.OutputURI)
	obj, err := o.Storage.WriteBytes(ctx, work.OutputURI, model)
	if errors.Is(err, storage.ErrExists) {
		o.Log.Warn("a model is already at the output URI without a result: adopting it", "uri", work.OutputURI)
		ours := storage.Digest(model)
		if model, obj, err = o.Storage.ReadAll(ctx, work.OutputURI, ""); err == nil && obj.Digest != ours {
			// Not another exchange: the other indices are done. This
			// runner scores every shard itself, to the same sums.
			if in.shards != nil {
				in.shards = exchange.Local(in.shards.Shards())
			}
			ev, err = evaluate(ctx, work, o, in, output{bytes: model})
		}
	}
	if err != nil {
		return res, outputError(err)
	}
	art := v1alpha1.Artifact{URI: work.OutputURI, Digest: obj.Digest, SizeBytes: obj.Size}
	return published(ctx, task, work, o, step, in, res, art, ev, out)
}

// published completes the result of an output written as art and
// writes result.json.
func published(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string), in inputs, res pipeline.Result, art v1alpha1.Artifact, ev evaluation, out *StageOutput) (pipeline.Result, error) {
	var err error
	art.Metrics = ev.Metrics
	res.Output = &art
	res.Warnings = out.Warnings
	for _, w := range out.Warnings {
		o.Log.Warn(w, "stage", task.Stage.Name)
	}
	res.Details, err = json.Marshal(details{Stage: out.Details, Evaluation: ev.Details})
	if err != nil {
		return res, fmt.Errorf("encoding result details: %w", err)
	}
	if err := writeResult(ctx, task, work, o, step, &res); err != nil {
		return res, err
	}
	dropPartials(ctx, in.shards, o)
	dropPartials(ctx, in.layerPod, o)
	return res, nil
}

// outputError names a failed write for what it is: a missing output
// bucket or directory is permanent (exit 66) but is not a missing input.
func outputError(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return &Error{Code: pipeline.ExitNotFound, Reason: "OutputNotFound", Err: err}
	}
	return err
}

type details struct {
	Stage      any `json:"stage,omitempty"`
	Evaluation any `json:"evaluation,omitempty"`
}

func writeResult(ctx context.Context, task, work pipeline.Task, o *Options, step func(Phase, string), res *pipeline.Result) error {
	answer(res, task, work)
	body, err := res.Encode()
	if err != nil {
		return err
	}
	step(PhaseWrite, "writing "+work.ResultURI())
	_, err = o.Storage.WriteBytes(ctx, work.ResultURI(), body)
	if errors.Is(err, storage.ErrExists) {
		// Another runner finished the same work first: report its result.
		theirs, ok, cerr := cachedResult(ctx, task, work, o.Storage)
		if cerr != nil || !ok {
			return errors.Join(err, cerr)
		}
		*res = theirs
		return nil
	}
	return err
}
