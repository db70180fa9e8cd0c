package runner

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/distill"
)

func TestDistillOptions(t *testing.T) {
	with := func(f func(o *distill.Options)) distill.Options {
		o := distill.Defaults()
		f(&o)
		return o
	}
	tests := []struct {
		name string
		spec v1alpha1.DistillSpec
		want distill.Options
	}{
		{"empty: the defaults", v1alpha1.DistillSpec{}, distill.Defaults()},
		{"auto temperature", v1alpha1.DistillSpec{Temperature: "auto"}, distill.Defaults()},
		{"every field", v1alpha1.DistillSpec{Epochs: 3, BatchSize: 16, MaxSteps: 300, Temperature: "4", Alpha: "0.5",
			Optimizer: v1alpha1.OptimizerSGD, LearningRate: "1e-2", Schedule: v1alpha1.ScheduleCosine, Momentum: "0.8", WeightDecay: "0.0001", Seed: 7},
			distill.Options{Epochs: 3, BatchSize: 16, MaxSteps: 300, Temperature: 4, Alpha: 0.5, Optimizer: distill.SGD,
				LearningRate: 0.01, Schedule: distill.ScheduleCosine, Momentum: 0.8, WeightDecay: 0.0001, Seed: 7}},
		{"zeros that mean zero", v1alpha1.DistillSpec{Alpha: "0", Momentum: "0", WeightDecay: "0"},
			with(func(o *distill.Options) { o.Alpha, o.Momentum = 0, 0 })},
		{"adam, step", v1alpha1.DistillSpec{Optimizer: v1alpha1.OptimizerAdam, Schedule: v1alpha1.ScheduleStep},
			with(func(o *distill.Options) { o.Schedule = distill.ScheduleStep })},
		{"constant", v1alpha1.DistillSpec{Schedule: v1alpha1.ScheduleConstant, Alpha: "1"},
			with(func(o *distill.Options) { o.Alpha = 1 })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := distillOptions(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(distill.Options{}, "Progress", "Log")); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestDistillOptionsErrors: a spec that cannot be applied fails before
// any work, with distill.ErrSpec (bad input) naming the spec's field.
func TestDistillOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.DistillSpec
		say  string
	}{
		{"negative epochs", v1alpha1.DistillSpec{Epochs: -1}, "distill.epochs -1: want 1 to 1000"},
		{"too many epochs", v1alpha1.DistillSpec{Epochs: 1001}, "distill.epochs 1001: want 1 to 1000"},
		{"batch too large", v1alpha1.DistillSpec{BatchSize: 70000}, "distill.batchSize 70000: want 1 to 65536"},
		{"negative maxSteps", v1alpha1.DistillSpec{MaxSteps: -5}, "distill.maxSteps -5: want 0 (no cap) or more"},
		{"negative temperature", v1alpha1.DistillSpec{Temperature: "-2"}, `distill.temperature "-2": want a decimal string in (0, 1e+06]`},
		{"temperature 0", v1alpha1.DistillSpec{Temperature: "0"}, `distill.temperature "0": want a decimal string in (0, 1e+06]`},
		{"temperature not a number", v1alpha1.DistillSpec{Temperature: "hot"}, `distill.temperature "hot": want a decimal string in (0, 1e+06]`},
		{"alpha above 1", v1alpha1.DistillSpec{Alpha: "1.5"}, `distill.alpha "1.5": want a decimal string in [0, 1]`},
		{"learning rate 0", v1alpha1.DistillSpec{LearningRate: "0"}, `distill.learningRate "0": want a decimal string in (0, 10]`},
		{"momentum 1", v1alpha1.DistillSpec{Momentum: "1"}, `distill.momentum "1": want a decimal in [0, 1)`},
		{"momentum above 1", v1alpha1.DistillSpec{Momentum: "1.2"}, `distill.momentum "1.2": want a decimal string in [0, 1]`},
		{"weight decay not a number", v1alpha1.DistillSpec{WeightDecay: "some"}, `distill.weightDecay "some": want a decimal string in [0, 1]`},
		{"unknown optimizer", v1alpha1.DistillSpec{Optimizer: "rmsprop"}, `distill.optimizer "rmsprop": want adam or sgd`},
		{"unknown schedule", v1alpha1.DistillSpec{Schedule: "linear"}, `distill.schedule "linear": want constant, cosine or step`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := distillOptions(tc.spec)
			if !errors.Is(err, distill.ErrSpec) || ExitCode(err) != 65 {
				t.Fatalf("error %v (exit %d), want distill.ErrSpec (exit 65)", err, ExitCode(err))
			}
			if d := cmp.Diff("invalid distill spec: "+tc.say, err.Error()); d != "" {
				t.Errorf("message (-want +got):\n%s", d)
			}
		})
	}
}

// TestDistillOptionsDefaults: the CRD's defaults and distill.Defaults,
// which the runner gives a task that did not come through the API
// server, agree.
func TestDistillOptionsDefaults(t *testing.T) {
	job := defaulted(t, "  - {name: d, type: Distill, distill: {}}\n")
	fromCRD, err := distillOptions(*job.Spec.Stages[0].Distill)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(distill.Defaults(), fromCRD, cmpopts.IgnoreFields(distill.Options{}, "Progress", "Log")); d != "" {
		t.Errorf("distill.Defaults (-) and the CRD's defaults (+) differ:\n%s", d)
	}
}
