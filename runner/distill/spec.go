package distill

import (
	"fmt"
	"strconv"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/fault"
)

// ErrSpec marks errors in the stage's distill spec (bad input, not a
// failure of the run).
var ErrSpec = fault.New("invalid distill spec")

// settings is a DistillSpec with its defaults applied and its decimal
// strings parsed.
type settings struct {
	epochs    int
	batch     int
	maxSteps  int64
	autoTemp  bool
	temp      float64
	alpha     float64
	optimizer v1alpha1.Optimizer
	lr        float64
	schedule  v1alpha1.Schedule
	momentum  float64
	decay     float64
	seed      int64
}

// resolve applies the API defaults (the CRD applies them in a cluster; a
// spec built in Go may leave them empty) and checks every field, naming
// it.
func resolve(spec v1alpha1.DistillSpec) (*settings, error) {
	s := &settings{epochs: int(spec.Epochs), batch: int(spec.BatchSize), maxSteps: spec.MaxSteps,
		optimizer: spec.Optimizer, schedule: spec.Schedule, seed: spec.Seed}
	if s.epochs == 0 {
		s.epochs = 1
	}
	if s.batch == 0 {
		s.batch = 64
	}
	if s.epochs < 0 || s.epochs > 1000 {
		return nil, fmt.Errorf("%w: distill.epochs %d: want 1 to 1000", ErrSpec, s.epochs)
	}
	if s.batch < 0 || s.batch > 65536 {
		return nil, fmt.Errorf("%w: distill.batchSize %d: want 1 to 65536", ErrSpec, s.batch)
	}
	if s.maxSteps < 0 {
		return nil, fmt.Errorf("%w: distill.maxSteps %d: want 0 (no cap) or more", ErrSpec, s.maxSteps)
	}
	var err error
	switch spec.Temperature {
	case "", "auto":
		s.autoTemp = true
	default:
		if s.temp, err = decimal("temperature", spec.Temperature, 0, false, 1e6); err != nil {
			return nil, err
		}
	}
	if s.alpha, err = decimalOr("alpha", spec.Alpha, "0.7", 0, true, 1); err != nil {
		return nil, err
	}
	if s.lr, err = decimalOr("learningRate", spec.LearningRate, "0.001", 0, false, 10); err != nil {
		return nil, err
	}
	if s.momentum, err = decimalOr("momentum", spec.Momentum, "0.9", 0, true, 1); err != nil {
		return nil, err
	}
	if s.momentum >= 1 {
		return nil, fmt.Errorf("%w: distill.momentum %q: want a decimal in [0, 1)", ErrSpec, spec.Momentum)
	}
	if s.decay, err = decimalOr("weightDecay", spec.WeightDecay, "0", 0, true, 1); err != nil {
		return nil, err
	}
	switch s.optimizer {
	case "":
		s.optimizer = v1alpha1.OptimizerAdam
	case v1alpha1.OptimizerAdam, v1alpha1.OptimizerSGD:
	default:
		return nil, fmt.Errorf("%w: distill.optimizer %q: want adam or sgd", ErrSpec, spec.Optimizer)
	}
	switch s.schedule {
	case "":
		s.schedule = v1alpha1.ScheduleConstant
	case v1alpha1.ScheduleConstant, v1alpha1.ScheduleCosine, v1alpha1.ScheduleStep:
	default:
		return nil, fmt.Errorf("%w: distill.schedule %q: want constant, cosine or step", ErrSpec, spec.Schedule)
	}
	return s, nil
}

func decimalOr(field, v, def string, lo float64, loIncl bool, hi float64) (float64, error) {
	if v == "" {
		v = def
	}
	return decimal(field, v, lo, loIncl, hi)
}

// decimal parses a decimal string in (lo, hi] or [lo, hi].
func decimal(field, v string, lo float64, loIncl bool, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f > hi || f < lo || (!loIncl && f == lo) {
		open := "("
		if loIncl {
			open = "["
		}
		return 0, fmt.Errorf("%w: distill.%s %q: want a decimal string in %s%g, %g]", ErrSpec, field, v, open, lo, hi)
	}
	return f, nil
}
