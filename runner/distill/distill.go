package distill

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/fault"
	"github.com/kompress/kompress/runner/onnx"
)

// ErrBadInput marks errors caused by the student, the teacher or the
// dataset (as opposed to failures of the run): they are found before any
// training time is spent.
var ErrBadInput = fault.New("bad distillation input")

// Report says what Distill did.
type Report struct {
	Samples   int   `json:"samples"`
	Classes   int   `json:"classes"`
	Epochs    int   `json:"epochs"`
	Steps     int64 `json:"steps"`
	BatchSize int   `json:"batchSize"`
	Replicas  int   `json:"replicas"`
	// Temperature is the one used; TemperatureAuto tells whether it was
	// chosen from the teacher's logits.
	Temperature     float64 `json:"temperature"`
	TemperatureAuto bool    `json:"temperatureAuto"`
	Alpha           float64 `json:"alpha"`
	// TeacherProbabilities is true when the teacher outputs
	// probabilities (it ends in Softmax): their logarithms were used as
	// its logits.
	TeacherProbabilities bool    `json:"teacherProbabilities,omitempty"`
	HardLabels           bool    `json:"hardLabels"`
	Optimizer            string  `json:"optimizer"`
	Schedule             string  `json:"schedule"`
	LearningRate         float64 `json:"learningRate"`
	// FirstLoss is the mean loss of the first steps, FinalLoss of the
	// last ones.
	FirstLoss float64 `json:"firstLoss"`
	FinalLoss float64 `json:"finalLoss"`
	// Trained lists the weights that trained; Masked counts the pruned
	// (zero) entries of prunable weights kept at zero.
	Trained []string `json:"trained"`
	Masked  int      `json:"masked"`
	// Sparsity of the prunable weights (Conv, Gemm, MatMul) before and
	// after training: equal, since masks are kept.
	SparsityBefore float64 `json:"sparsityBefore"`
	SparsityAfter  float64 `json:"sparsityAfter"`
	TeacherSeconds float64 `json:"teacherSeconds"`
	TrainSeconds   float64 `json:"trainSeconds"`
	// TrainCPUSeconds is the CPU time the process used while training:
	// on a shared machine ImagesPerSec falls with other load, the
	// images per CPU second do not.
	TrainCPUSeconds float64 `json:"trainCPUSeconds"`
	ImagesPerSec    float64 `json:"imagesPerSecond"`
	// VerifyMaxDiff is the largest difference between ONNX Runtime's
	// outputs of the written student and the training graph's, relative
	// to the largest output.
	VerifyMaxDiff float64 `json:"verifyMaxDiff"`
	PeakRSSBytes  int64   `json:"peakRSSBytes"`
}

// verifySamples is how many samples the written student is checked on.
const verifySamples = 64

// verifyTolerance bounds VerifyMaxDiff.
const verifyTolerance = 1e-4

// Distill trains student to match teacher (a serialized model, run in
// ONNX Runtime) on train, as opts say, and writes the trained weights
// back into student in place, where they were stored (initializers or
// Constant nodes): the graph is otherwise unchanged. The written model
// is checked in ONNX Runtime against the training graph before Distill
// returns it. Errors wrapping ErrBadInput or ErrSpec come before any
// training.
func Distill(ctx context.Context, student *onnx.Model, teacher []byte, train *dataset.Dataset, opts Options) (*onnx.Model, *Report, error) {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Threads <= 0 {
		opts.Threads = runtime.GOMAXPROCS(0)
	}
	if opts.TeacherName == "" {
		opts.TeacherName = "teacher"
	}
	s, err := opts.resolve()
	if err != nil {
		return nil, nil, err
	}
	r, rep, err := prepare(ctx, student, teacher, train, s, &opts)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		for _, t := range r.reps {
			t.close()
		}
	}()
	opts.Log.Info("distilling", "samples", rep.Samples, "classes", rep.Classes, "temperature", rep.Temperature,
		"auto", rep.TemperatureAuto, "alpha", rep.Alpha, "replicas", rep.Replicas, "batch", rep.BatchSize, "trained", len(rep.Trained))
	st, err := r.train(ctx)
	if err != nil {
		return nil, nil, err
	}
	rep.Epochs, rep.Steps, rep.FirstLoss, rep.FinalLoss = st.epochs, st.steps, st.firstLoss, st.lastLoss
	rep.TrainSeconds, rep.TrainCPUSeconds, rep.ImagesPerSec = st.seconds, st.cpuSeconds, st.imagesPerS
	if err := writeBack(r.p); err != nil {
		return nil, nil, err
	}
	rep.SparsityAfter = r.p.sparsity()
	if rep.VerifyMaxDiff, err = verify(ctx, r.p, train, opts.Threads); err != nil {
		return nil, nil, err
	}
	rep.PeakRSSBytes = peakRSS()
	return student, rep, nil
}

// prepare checks everything, runs the teacher and builds the replicas:
// what can be wrong with the inputs is found here.
func prepare(ctx context.Context, student *onnx.Model, teacher []byte, train *dataset.Dataset, s *settings, opts *Options) (*run, *Report, error) {
	if train == nil || train.Len() == 0 {
		return nil, nil, fmt.Errorf("%w: distillation needs a dataset with samples", ErrBadInput)
	}
	p, err := newPlan(student)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	labels := train.Labels != nil && s.alpha < 1
	if train.Labels == nil && s.alpha < 1 {
		return nil, nil, fmt.Errorf("%w: distill.alpha %g gives %g of the loss to hard labels, and dataset %s has no labels (y): set alpha to 1 or use a dataset with labels",
			ErrBadInput, s.alpha, 1-s.alpha, train.Name)
	}
	sample := train.SampleShape()
	if err := checkSample(p, sample, train.Name); err != nil {
		return nil, nil, err
	}
	batch := min(s.batch, train.Len())
	shards := splitBatch(batch, opts.Threads)
	lg := lossGeom{t: 1, alpha: s.alpha, labels: labels}
	first, err := newReplica(p, shards[0], sample, lg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrBadInput, err)
	}
	k := first.net.k
	// The teacher's output size, from one sample, before its whole run.
	if _, tk, err := outputs(ctx, opts.TeacherName, teacher, train, 1, 1); err != nil {
		return nil, nil, fmt.Errorf("%w: teacher: %w", ErrBadInput, err)
	} else if tk != k {
		return nil, nil, fmt.Errorf("%w: the teacher %s gives %d outputs per sample and the student %s %d: they must match",
			ErrBadInput, opts.TeacherName, tk, student.Name, k)
	}
	if labels {
		for i, y := range train.Labels {
			if y < 0 || int(y) >= k {
				return nil, nil, fmt.Errorf("%w: dataset %s label %d of sample %d is not a class of the %d outputs", ErrBadInput, train.Name, y, i, k)
			}
		}
	}
	shards, err = fitMemory(first, shards, train.Len()*k)
	if err != nil {
		return nil, nil, err
	}
	start := time.Now()
	logits, _, err := outputs(ctx, opts.TeacherName, teacher, train, train.Len(), opts.Threads)
	if err != nil {
		return nil, nil, fmt.Errorf("teacher: %w", err)
	}
	probs := probabilities(logits, k)
	if probs {
		// softmax(log p / T) is the teacher's distribution softened:
		// log-probabilities are logits up to a constant per sample.
		toLogits(logits)
	}
	rep := &Report{Samples: train.Len(), Classes: k, TeacherProbabilities: probs, BatchSize: sumInts(shards), Replicas: len(shards), Alpha: s.alpha,
		HardLabels: labels, Optimizer: string(s.optimizer), Schedule: string(s.schedule), LearningRate: s.lr,
		TeacherSeconds: time.Since(start).Seconds(), SparsityBefore: p.sparsity()}
	rep.Temperature, rep.TemperatureAuto = s.temp, s.autoTemp
	if s.autoTemp {
		rep.Temperature = autoTemperature(logits, train.Len(), k)
	}
	for _, pr := range p.params {
		rep.Trained = append(rep.Trained, pr.w.Name)
		rep.Masked += pr.zeros()
	}
	// Every replica gets the temperature now that it is known.
	lg.t = rep.Temperature
	first.close()
	reps := make([]trainer, len(shards))
	for i, n := range shards {
		if reps[i], err = newReplica(p, n, sample, lg); err != nil {
			return nil, nil, err
		}
	}
	r := &run{p: p, s: s, data: train, soft: softenAll(logits, train.Len(), k, rep.Temperature), k: k, reps: reps, shards: shards,
		report: func(Progress) {}}
	if opts.Progress != nil {
		r.report = opts.Progress
	}
	return r, rep, nil
}

// checkSample checks the dataset's sample shape against the student's
// declared input (dynamic dimensions match anything).
func checkSample(p *plan, sample []int, name string) error {
	if len(p.inDims) != len(sample)+1 {
		return fmt.Errorf("%w: dataset %s has samples of shape %v; student input %q is %v", ErrBadInput, name, sample, p.input, p.inDims)
	}
	for i, d := range p.inDims[1:] {
		if d > 0 && int(d) != sample[i] {
			return fmt.Errorf("%w: dataset %s has samples of shape %v; student input %q is %v", ErrBadInput, name, sample, p.input, p.inDims)
		}
	}
	return nil
}

// fitMemory reduces the number of replicas when the memory limit
// (GOMEMLIMIT, which the runner sets from the pod's limit) cannot hold
// them all, and fails when it cannot hold one.
func fitMemory(r *replica, shards []int, cached int) ([]int, error) {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return shards, nil
	}
	per := graphBytes(r)
	fixed := int64(cached) * 4 * 2 // teacher logits and soft targets
	if float64(fixed) > 0.7*float64(limit) {
		return nil, fmt.Errorf("%w: the teacher's outputs for the dataset need %d MiB, over 70%% of the memory limit (%d MiB): use a smaller dataset or raise the memory limit",
			ErrBadInput, fixed>>20, limit>>20)
	}
	batch := sumInts(shards)
	for reps := len(shards); reps >= 1; reps-- {
		// Graph memory scales with the shard size.
		need := fixed + per*int64(batch)/int64(shards[0])
		if float64(need) <= 0.7*float64(limit) {
			return splitBatch(batch, reps), nil
		}
	}
	return nil, fmt.Errorf("%w: a batch of %d needs about %d MiB for training, over 70%% of the memory limit (%d MiB): lower distill.batchSize",
		ErrBadInput, batch, (fixed+per*int64(batch)/int64(shards[0]))>>20, limit>>20)
}

// graphBytes estimates the memory one replica's graph uses: every
// node's value, and as much again for scratch and the machine's copies.
func graphBytes(r *replica) int64 {
	var n int64
	for _, node := range r.net.g.AllNodes() {
		n += int64(node.Shape().TotalSize())
	}
	return n * 4 * 2
}

// writeBack stores the trained weights where they came from. Weights
// stored as sparse initializers (by a pruning stage) are stored sparse
// again: their zeros were kept.
func writeBack(p *plan) error {
	var sparse []string
	for _, pr := range p.params {
		if pr.w.Kind == onnx.KindSparseInitializer {
			sparse = append(sparse, pr.w.Name)
		}
		t := onnx.NewTensor(pr.w.Dims, append([]float32(nil), pr.data...))
		if err := pr.w.Set(t); err != nil {
			return fmt.Errorf("writing back %q: %w", pr.w.Name, err)
		}
	}
	if len(sparse) > 0 {
		if _, err := p.model.Sparsify(sparse, onnx.LinearIndices); err != nil {
			return fmt.Errorf("storing %v sparse again: %w", sparse, err)
		}
	}
	return nil
}

// verify runs the written student in ONNX Runtime on the first samples
// and compares with the training graph's forward pass.
func verify(ctx context.Context, p *plan, data *dataset.Dataset, threads int) (float64, error) {
	n := min(verifySamples, data.Len())
	sample := data.SampleShape()
	x := data.Float32s(0, n)
	raw, err := p.model.Bytes()
	if err != nil {
		return 0, err
	}
	want, _, err := outputs(ctx, p.model.Name, raw, data, n, threads)
	if err != nil {
		return 0, fmt.Errorf("the trained student does not run in ONNX Runtime: %w", err)
	}
	fw, err := newForward(p, n, sample)
	if err != nil {
		return 0, err
	}
	defer fw.close()
	got, err := fw.run(x)
	if err != nil {
		return 0, err
	}
	d := maxRelDiff(got, want)
	if d > verifyTolerance || math.IsNaN(d) {
		return d, fmt.Errorf("the trained student's outputs in ONNX Runtime differ from the training graph's by %.3g (relative), over %g", d, verifyTolerance)
	}
	return d, nil
}

// maxRelDiff is the largest difference between a and b relative to the
// largest magnitude in b.
func maxRelDiff(a, b []float32) float64 {
	var d, scale float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		scale = math.Max(scale, math.Abs(float64(b[i])))
	}
	return d / math.Max(scale, 1e-6)
}

// probabilities reports whether every row of k outputs is a probability
// distribution (non-negative, summing to 1).
func probabilities(out []float32, k int) bool {
	for r := 0; r+k <= len(out); r += k {
		var sum float64
		for _, v := range out[r : r+k] {
			if v < 0 {
				return false
			}
			sum += float64(v)
		}
		if math.Abs(sum-1) > 1e-3 {
			return false
		}
	}
	return len(out) > 0
}

// toLogits replaces probabilities by their logarithms (floored, so that a
// probability that underflowed to zero stays finite).
func toLogits(p []float32) {
	for i, v := range p {
		p[i] = float32(math.Log(math.Max(float64(v), 1e-30)))
	}
}
