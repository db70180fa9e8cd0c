package distill

import (
	"fmt"
	"log/slog"
	"math"

	"github.com/kompress/kompress/runner/fault"
)

// ErrSpec marks Options that cannot be applied (bad input, not a failure
// of the run).
var ErrSpec = fault.New("invalid distill spec")

// Optimizer selects the optimizer.
type Optimizer string

// The optimizers.
const (
	Adam Optimizer = "adam"
	// SGD is stochastic gradient descent with Momentum.
	SGD Optimizer = "sgd"
)

// Schedule selects the learning-rate schedule over the run.
type Schedule string

// The schedules.
const (
	ScheduleConstant Schedule = "constant"
	// ScheduleCosine decays the rate to zero over the run.
	ScheduleCosine Schedule = "cosine"
	// ScheduleStep multiplies the rate by 0.1 after each third of the run.
	ScheduleStep Schedule = "step"
)

// Options tune Distill. The training fields have no usable zero value:
// start from Defaults() and change what differs (Alpha and Momentum may
// well be 0). The fields that say how it runs (Threads and below) default
// when zero. Fields are named as the stage spec's (distill.batchSize is
// BatchSize), and so are they in errors, which wrap ErrSpec.
type Options struct {
	// Epochs over the training data, 1 to 1000.
	Epochs int
	// BatchSize of one optimizer step over all replicas, 1 to 65536.
	BatchSize int
	// MaxSteps caps optimizer steps; 0 means no cap.
	MaxSteps int64
	// Temperature softens logits, in (0, 1e6]; 0 chooses it from the
	// spread of the teacher's logits ("auto").
	Temperature float64
	// Alpha weighs the soft (teacher) loss against hard-label
	// cross-entropy, in [0, 1].
	Alpha float64
	// Optimizer: Adam or SGD.
	Optimizer Optimizer
	// LearningRate, in (0, 10].
	LearningRate float64
	// Schedule of the learning rate.
	Schedule Schedule
	// Momentum of SGD, in [0, 1).
	Momentum float64
	// WeightDecay is the L2 penalty, in [0, 1].
	WeightDecay float64
	// Seed orders the samples.
	Seed int64

	// Threads is the number of replicas trained in parallel (one per
	// core); 0 uses GOMAXPROCS.
	Threads int
	// TeacherName names the teacher in messages (a URI or file name);
	// default "teacher".
	TeacherName string
	// Progress, if set, receives the training loop's progress about once
	// a second.
	Progress func(Progress)
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// Defaults are the training options a stage spec gets when it sets none.
func Defaults() Options {
	return Options{
		Epochs: 1, BatchSize: 64, Alpha: 0.7, Optimizer: Adam, LearningRate: 0.001,
		Schedule: ScheduleConstant, Momentum: 0.9,
	}
}

// Validate reports the first training option that cannot be applied,
// wrapping ErrSpec.
func (o Options) Validate() error {
	_, err := o.resolve()
	return err
}

// settings are the training Options, checked.
type settings struct {
	epochs    int
	batch     int
	maxSteps  int64
	autoTemp  bool
	temp      float64
	alpha     float64
	optimizer Optimizer
	lr        float64
	schedule  Schedule
	momentum  float64
	decay     float64
	seed      int64
}

// resolve checks every training option, naming it.
func (o Options) resolve() (*settings, error) {
	s := &settings{epochs: o.Epochs, batch: o.BatchSize, maxSteps: o.MaxSteps, autoTemp: o.Temperature == 0, temp: o.Temperature,
		alpha: o.Alpha, optimizer: o.Optimizer, lr: o.LearningRate, schedule: o.Schedule, momentum: o.Momentum,
		decay: o.WeightDecay, seed: o.Seed}
	switch {
	case s.epochs < 1 || s.epochs > 1000:
		return nil, fmt.Errorf("%w: distill.epochs %d: want 1 to 1000", ErrSpec, s.epochs)
	case s.batch < 1 || s.batch > 65536:
		return nil, fmt.Errorf("%w: distill.batchSize %d: want 1 to 65536", ErrSpec, s.batch)
	case s.maxSteps < 0:
		return nil, fmt.Errorf("%w: distill.maxSteps %d: want 0 (no cap) or more", ErrSpec, s.maxSteps)
	case !in(s.temp, 0, true, 1e6):
		return nil, fmt.Errorf("%w: distill.temperature %v: want 0 (auto) or a number in (0, 1e+06]", ErrSpec, s.temp)
	case !in(s.alpha, 0, true, 1):
		return nil, fmt.Errorf("%w: distill.alpha %v: want a number in [0, 1]", ErrSpec, s.alpha)
	case !in(s.lr, 0, false, 10):
		return nil, fmt.Errorf("%w: distill.learningRate %v: want a number in (0, 10]", ErrSpec, s.lr)
	case !in(s.momentum, 0, true, 1) || s.momentum == 1:
		return nil, fmt.Errorf("%w: distill.momentum %v: want a number in [0, 1)", ErrSpec, s.momentum)
	case !in(s.decay, 0, true, 1):
		return nil, fmt.Errorf("%w: distill.weightDecay %v: want a number in [0, 1]", ErrSpec, s.decay)
	}
	switch s.optimizer {
	case Adam, SGD:
	default:
		return nil, fmt.Errorf("%w: distill.optimizer %q: want adam or sgd", ErrSpec, s.optimizer)
	}
	switch s.schedule {
	case ScheduleConstant, ScheduleCosine, ScheduleStep:
	default:
		return nil, fmt.Errorf("%w: distill.schedule %q: want constant, cosine or step", ErrSpec, s.schedule)
	}
	return s, nil
}

// in reports whether v is in (lo, hi], or [lo, hi] with loIncl.
func in(v, lo float64, loIncl bool, hi float64) bool {
	return !math.IsNaN(v) && v <= hi && (v > lo || loIncl && v == lo)
}
