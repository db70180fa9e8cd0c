package runner

import (
	"fmt"
	"strconv"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/distill"
)

// distillOptions translates a stage's distill spec into the training
// fields of distill.Options: enums into Go values, the decimal strings
// into numbers ("auto" temperature into 0), and the CRD's defaults
// (distill.Defaults) into fields the spec leaves empty (a task that did
// not come through the API server). Errors name the spec's field and
// wrap distill.ErrSpec, which is bad input.
func distillOptions(spec v1alpha1.DistillSpec) (distill.Options, error) {
	o := distill.Defaults()
	if spec.Epochs != 0 {
		o.Epochs = int(spec.Epochs)
	}
	if spec.BatchSize != 0 {
		o.BatchSize = int(spec.BatchSize)
	}
	o.MaxSteps, o.Seed = spec.MaxSteps, spec.Seed
	var err error
	switch spec.Temperature {
	case "", "auto":
		o.Temperature = 0
	default:
		if o.Temperature, err = distillDecimal("temperature", spec.Temperature, 0, false, 1e6); err != nil {
			return distill.Options{}, err
		}
	}
	for _, f := range []struct {
		field, value string
		to           *float64
		lo           float64
		loIncl       bool
		hi           float64
	}{
		{"alpha", spec.Alpha, &o.Alpha, 0, true, 1},
		{"learningRate", spec.LearningRate, &o.LearningRate, 0, false, 10},
		{"momentum", spec.Momentum, &o.Momentum, 0, true, 1},
		{"weightDecay", spec.WeightDecay, &o.WeightDecay, 0, true, 1},
	} {
		if f.value == "" {
			continue
		}
		if *f.to, err = distillDecimal(f.field, f.value, f.lo, f.loIncl, f.hi); err != nil {
			return distill.Options{}, err
		}
	}
	if o.Momentum >= 1 {
		return distill.Options{}, fmt.Errorf("%w: distill.momentum %q: want a decimal in [0, 1)", distill.ErrSpec, spec.Momentum)
	}
	switch spec.Optimizer {
	case "":
	case v1alpha1.OptimizerAdam:
		o.Optimizer = distill.Adam
	case v1alpha1.OptimizerSGD:
		o.Optimizer = distill.SGD
	default:
		return distill.Options{}, fmt.Errorf("%w: distill.optimizer %q: want adam or sgd", distill.ErrSpec, spec.Optimizer)
	}
	switch spec.Schedule {
	case "":
	case v1alpha1.ScheduleConstant:
		o.Schedule = distill.ScheduleConstant
	case v1alpha1.ScheduleCosine:
		o.Schedule = distill.ScheduleCosine
	case v1alpha1.ScheduleStep:
		o.Schedule = distill.ScheduleStep
	default:
		return distill.Options{}, fmt.Errorf("%w: distill.schedule %q: want constant, cosine or step", distill.ErrSpec, spec.Schedule)
	}
	// Ranges of the integers (epochs, batchSize, maxSteps) are the
	// package's; its messages name the fields as the spec does.
	if err := o.Validate(); err != nil {
		return distill.Options{}, err
	}
	return o, nil
}

// distillDecimal parses a decimal string in (lo, hi] or [lo, hi].
func distillDecimal(field, v string, lo float64, loIncl bool, hi float64) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f > hi || f < lo || (!loIncl && f == lo) {
		open := "("
		if loIncl {
			open = "["
		}
		return 0, fmt.Errorf("%w: distill.%s %q: want a decimal string in %s%g, %g]", distill.ErrSpec, field, v, open, lo, hi)
	}
	return f, nil
}
