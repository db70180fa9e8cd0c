package eval

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/exchange"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
)

// Defaults for values the settings or the request leave at zero.
const (
	DefaultLatencyBatchSize = 1
	DefaultLatencyRuns      = 50
	// WarmupRuns precede the timed runs: the first runs of a session pay
	// for memory allocation and kernel selection.
	WarmupRuns = 5
	// DefaultDynamicDim replaces dynamic non-batch dimensions of
	// synthesized inputs (3x320x320 for an image model taking [N,3,H,W]).
	DefaultDynamicDim = feed.DefaultDynamicDim
	// DefaultSynthSamples is how many samples are synthesized when there
	// is no dataset (fewer when Settings.Samples asks for fewer).
	DefaultSynthSamples = 8
)

// Settings say how much of a model is measured. The zero value scores
// every sample and times DefaultLatencyRuns runs at batch size
// DefaultLatencyBatchSize.
type Settings struct {
	// Samples caps how many dataset samples are scored (and how many are
	// synthesized without a dataset, at most DefaultSynthSamples); 0
	// scores them all.
	Samples int
	// LatencyBatchSize is the batch size latency is timed at (the model's
	// own when it fixes one); 0 means DefaultLatencyBatchSize.
	LatencyBatchSize int
	// LatencyRuns is how many timed runs follow the WarmupRuns; 0 means
	// DefaultLatencyRuns.
	LatencyRuns int
}

// Request is one model to measure.
type Request struct {
	// Model is the serialized model; Name identifies it in errors.
	Model []byte
	Name  string
	// Source is the job's source model, the reference for fidelity and
	// sourceAccuracy (it may be the same bytes as Model); nil measures no
	// fidelity. SourceName identifies it in errors.
	Source     []byte
	SourceName string
	// Files, when set, is the model instead of Model: one read from its
	// files with its weights in external data (onnx.OpenFile), which
	// ONNX Runtime reads from their folder; FilesBytes is the bytes of
	// every file. SourceFiles and SourceFilesBytes are the same for the
	// source, instead of Source.
	Files            *onnx.Model
	FilesBytes       int64
	SourceFiles      *onnx.Model
	SourceFilesBytes int64
	// Data feeds the model's inputs (runner/feed matches it to them); nil
	// synthesizes inputs.
	Data *dataset.Dataset
	// Spec says how much to measure.
	Spec Settings
	// Inputs says, by input name, how inputs are synthesized without a
	// dataset: one sample's shape (or an input's whole shape, fed with
	// every batch), a constant value or a range (feed.Spec). A name that
	// is not an input of the model is an error.
	Inputs map[string]feed.Spec
	// Threads is how many batches are scored at once (each on one
	// thread) and ONNX Runtime's intra-op thread count for latency; 0
	// means GOMAXPROCS.
	Threads int
	// Progress, when set, is called after each scored batch, in order,
	// with the samples scored so far.
	Progress func(done, total int)
	// Exchange, when set (spec.parallelism), scores the batches as the
	// shards of a data pass: cut into shard.Units units, tallied per
	// unit and merged by a fixed tree (scoreShards), the same sums for
	// every shard count, whether the shards are workers of this process
	// or pods. Nil sums the batches in order.
	Exchange exchange.Exchange
	// ScoreOnly stops after scoring, with the scores in the report: an
	// index of an Indexed Job that does not publish takes part in the
	// scoring's exchange and needs nothing else.
	ScoreOnly bool
}

// Report holds the measurements. Fields that were not measured (no labels,
// no source) are zero and their flags false.
type Report struct {
	Bytes         int64
	SourceBytes   int64 // 0 without a source
	Params        int64
	NonzeroParams int64
	Sparsity      float64
	// MACs is per sample; MACsByOp splits it by operator type.
	MACs     int64
	MACsByOp map[string]int64

	// Samples is how many samples were scored; Synthesized says they were
	// made up from InputShapes (one sample's dims per input name).
	Samples     int
	Synthesized bool
	InputShapes map[string][]int64

	// Labeled: Accuracy (and SourceAccuracy with a source) were measured.
	Labeled        bool
	Accuracy       float64
	SourceAccuracy float64
	// Compared: the model was compared with the source. Top1Agreement
	// and Cosine are the first output's, unless it has one value per
	// sample (then they are zero: see Outputs).
	Compared      bool
	Top1Agreement float64
	Cosine        float64
	// Outputs compares every output of the model with the source's, in
	// the model's order (nil when not Compared).
	Outputs []OutputFidelity

	LatencyP50       time.Duration
	LatencyP95       time.Duration
	LatencyBatchSize int
}

// OutputKind says how an output is compared with the source's.
type OutputKind string

const (
	// OutputScores: several values per sample, the output's last axis
	// ([N, C]): one top-1 per sample.
	OutputScores OutputKind = "scores"
	// OutputSequence: a rank >= 3 output ([N, T, C]): one top-1 per
	// position on the last axis.
	OutputSequence OutputKind = "sequence"
	// OutputValue: one value per sample ([N] or [N, 1]: a regression, a
	// score), or a last axis of one value: no top-1, no cosine (both
	// would be 1 by construction); relative error over the samples.
	OutputValue OutputKind = "value"
)

// OutputFidelity compares one output with the source's, on the same
// samples.
type OutputFidelity struct {
	Name string
	Kind OutputKind
	// Classes is the length of the last axis top-1 runs over, Positions
	// the top-1 positions per sample (1 for scores); both 0 for values.
	Classes, Positions int
	// Top1Agreement is the fraction of positions (of every sample) whose
	// argmax is the source's; Cosine the mean over samples of the
	// cosine of the output flattened per sample. Neither is measured
	// for values.
	Top1Agreement float64
	Cosine        float64
	// RelativeError is ‖y−ŷ‖/‖y‖ (y the source's output, ŷ the
	// model's) per sample, averaged over the samples; for values, of
	// the samples' values taken together (one value per sample makes a
	// per-sample ratio swing without bound where the source's value is
	// near zero). A sample whose source output is all zero counts 0
	// when the model's is too, else 1.
	RelativeError float64
	// MaxAbsError is the largest |y−ŷ| over every value of every sample.
	MaxAbsError float64
	// SNRDb is 10·log10(Σy²/Σ(y−ŷ)²) over every value of every sample,
	// within ±compare.MaxSNRDb (identical outputs measure the maximum).
	SNRDb float64
}

// AccuracyDrop is SourceAccuracy - Accuracy.
func (r Report) AccuracyDrop() float64 { return r.SourceAccuracy - r.Accuracy }

// Evaluate loads the model (and the source) into ONNX Runtime, scores it on
// the request's data, counts its parameters and MACs and times it. Any
// failure to load or run the model is an error naming it.
func Evaluate(ctx context.Context, req Request) (Report, error) {
	if err := req.validate(); err != nil {
		return Report{}, err
	}
	name := req.name()
	threads := req.Threads
	if threads == 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	// Scoring runs batches in parallel on one-thread sessions; latency is
	// timed on a session with the requested intra-op threads. Sessions are
	// closed as soon as they are done with, so at most two models are in
	// ONNX Runtime at once.
	one := feed.Options{Threads: 1}
	sess, err := req.open(one)
	if err != nil {
		return Report{}, err
	}
	defer sess.Close()
	var src *feed.Session
	if req.Source != nil || req.SourceFiles != nil {
		if src, err = req.openSource(one); err != nil {
			return Report{}, err
		}
		defer src.Close()
	}
	model := req.Files
	if model == nil {
		if model, err = onnx.Load(req.Model); err != nil {
			return Report{}, fmt.Errorf("%s: %w", name, err)
		}
	}

	rep := Report{Bytes: int64(len(req.Model)), SourceBytes: int64(len(req.Source))}
	if req.Files != nil {
		rep.Bytes = req.FilesBytes
	}
	if req.SourceFiles != nil {
		rep.SourceBytes = req.SourceFilesBytes
	}
	if rep.Params, rep.NonzeroParams, err = countParams(model); err != nil {
		return Report{}, fmt.Errorf("%s: counting parameters: %w", name, err)
	}
	if rep.Params > 0 {
		rep.Sparsity = 1 - float64(rep.NonzeroParams)/float64(rep.Params)
	}
	data, srcData, err := newData(req, sess, src)
	if err != nil {
		return Report{}, err
	}
	rep.Samples, rep.Synthesized, rep.InputShapes = data.Len(), data.Synthesized, data.SampleShapes()
	if err := score(ctx, req, data, srcData, sess, src, threads, &rep); err != nil {
		if data.Synthesized && ctx.Err() == nil {
			// Made-up inputs of the wrong shape are the usual cause
			// (a state whose batch is not its first dimension).
			err = fmt.Errorf("%w (run on synthesized inputs shaped %v per sample: give each input's shape, value or range in %s)", err, rep.InputShapes, InputsField)
		}
		return Report{}, err
	}
	if req.ScoreOnly {
		return rep, nil
	}
	fixed, err := feed.FixedBatch(data)
	if err != nil {
		return Report{}, fmt.Errorf("%s: %w", name, err)
	}
	sess.Close()
	if src != nil {
		src.Close()
	}
	if rep.MACs, rep.MACsByOp, err = countMACs(name, model, data, max(fixed, 1), one); err != nil {
		return Report{}, err
	}
	timed, err := req.open(feed.Options{Threads: threads})
	if err != nil {
		return Report{}, err
	}
	defer timed.Close()
	if err := measureLatency(ctx, req, data, timed, &rep); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// open loads the model into ONNX Runtime, from its bytes or its files.
func (req Request) open(o feed.Options) (*feed.Session, error) {
	if req.Files != nil {
		o.Name = req.name()
		return feed.Open(req.Files, o)
	}
	return feed.OpenBytes(req.name(), req.Model, o)
}

// openSource loads the source into ONNX Runtime.
func (req Request) openSource(o feed.Options) (*feed.Session, error) {
	if req.SourceFiles != nil {
		o.Name = req.sourceName()
		return feed.Open(req.SourceFiles, o)
	}
	return feed.OpenBytes(req.sourceName(), req.Source, o)
}

func (req Request) name() string {
	if req.Name != "" {
		return req.Name
	}
	return "model"
}

func (req Request) sourceName() string {
	if req.SourceName != "" {
		return req.SourceName
	}
	return "source model"
}

func (req Request) validate() error {
	switch {
	case len(req.Model) == 0 && req.Files == nil:
		return fmt.Errorf("%s: the model is empty (0 bytes)", req.name())
	case req.Source != nil && len(req.Source) == 0:
		return fmt.Errorf("%s: the source model is empty (0 bytes)", req.sourceName())
	case req.Spec.Samples < 0:
		return fmt.Errorf("eval: Spec.Samples is %d, expected >= 0", req.Spec.Samples)
	case req.Spec.LatencyBatchSize < 0:
		return fmt.Errorf("eval: Spec.LatencyBatchSize is %d, expected >= 1 (or 0 for the default %d)", req.Spec.LatencyBatchSize, DefaultLatencyBatchSize)
	case req.Spec.LatencyRuns < 0:
		return fmt.Errorf("eval: Spec.LatencyRuns is %d, expected >= 1 (or 0 for the default %d)", req.Spec.LatencyRuns, DefaultLatencyRuns)
	case req.Threads < 0:
		return fmt.Errorf("eval: Threads is %d, expected >= 0", req.Threads)
	case req.Data != nil && req.Data.Len() == 0:
		return fmt.Errorf("%s: the dataset has no samples", req.Data.Name)
	}
	return nil
}
