package distill

import (
	"errors"
	"math"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestSchedules(t *testing.T) {
	for _, tc := range []struct {
		schedule Schedule
		want     []float64 // rate at steps 0, 25, 50, 75, 99 of 100
	}{
		{ScheduleConstant, []float64{0.1, 0.1, 0.1, 0.1, 0.1}},
		{ScheduleCosine, []float64{0.1, 0.1 * (1 + math.Cos(math.Pi/4)) / 2, 0.05, 0.1 * (1 + math.Cos(3*math.Pi/4)) / 2, 0.1 * (1 + math.Cos(math.Pi*0.99)) / 2}},
		{ScheduleStep, []float64{0.1, 0.1, 0.01, 0.001, 0.001}},
	} {
		t.Run(string(tc.schedule), func(t *testing.T) {
			o := newOptimizer(&settings{lr: 0.1, schedule: tc.schedule}, nil, 100)
			var got []float64
			for _, step := range []int64{0, 25, 50, 75, 99} {
				got = append(got, o.rate(step))
			}
			if d := cmp.Diff(tc.want, got, cmpopts.EquateApprox(1e-12, 0)); d != "" {
				t.Errorf("rates (-want +got):\n%s", d)
			}
		})
	}
}

// TestOptimizerSteps checks two steps of each optimizer against the
// formulas worked by hand, with weight decay and a mask.
func TestOptimizerSteps(t *testing.T) {
	grads := [][]float32{{0.5, -1, 2}, {1, 1, -0.5}}
	for _, tc := range []struct {
		name string
		s    settings
		want []float32
	}{
		// SGD, μ=0.9, wd=0.1, lr=0.1; w=[1,-2,0(masked)].
		// step 1: g=[0.5+0.1, -1-0.2] = [0.6,-1.2]; m=g; w=[0.94,-1.88]
		// step 2: g=[1+0.094, 1-0.188]=[1.094,0.812]; m=0.9·m+g=[1.634,-0.268];
		//         w=[0.94-0.1634, -1.88+0.0268]
		{"sgd", settings{optimizer: SGD, lr: 0.1, momentum: 0.9, decay: 0.1, schedule: ScheduleConstant},
			[]float32{0.94 - 0.1634, -1.88 + 0.0268, 0}},
		// Adam, lr=0.1, no decay: the first step moves each weight by lr
		// against the gradient's sign; the second by lr·m̂/√v̂.
		{"adam", settings{optimizer: Adam, lr: 0.1, schedule: ScheduleConstant},
			adamByHand([]float32{1, -2}, grads, 0.1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &param{data: []float32{1, -2, 0}, mask: []bool{false, false, true}, prunable: true}
			o := newOptimizer(&tc.s, []*param{p}, 2)
			for _, g := range grads {
				o.step([]*param{p}, [][]float32{append([]float32(nil), g...)})
			}
			if d := cmp.Diff(tc.want, p.data, cmpopts.EquateApprox(1e-5, 1e-6)); d != "" {
				t.Errorf("weights (-want +got):\n%s", d)
			}
			if p.data[2] != 0 {
				t.Errorf("masked weight is %g", p.data[2])
			}
		})
	}
}

// adamByHand runs Adam in float64 on the unmasked weights.
func adamByHand(w []float32, grads [][]float32, lr float64) []float32 {
	m, v := make([]float64, len(w)), make([]float64, len(w))
	out := make([]float64, len(w))
	for i := range w {
		out[i] = float64(w[i])
	}
	for t, g := range grads {
		for i := range w {
			m[i] = 0.9*m[i] + 0.1*float64(g[i])
			v[i] = 0.999*v[i] + 0.001*float64(g[i])*float64(g[i])
			mh := m[i] / (1 - math.Pow(0.9, float64(t+1)))
			vh := v[i] / (1 - math.Pow(0.999, float64(t+1)))
			out[i] -= lr * mh / (math.Sqrt(vh) + 1e-8)
		}
	}
	return []float32{float32(out[0]), float32(out[1]), 0}
}

func TestResolveDefaults(t *testing.T) {
	s, err := Defaults().resolve()
	if err != nil {
		t.Fatal(err)
	}
	want := settings{epochs: 1, batch: 64, autoTemp: true, alpha: 0.7, optimizer: Adam, lr: 0.001,
		schedule: ScheduleConstant, momentum: 0.9}
	if d := cmp.Diff(want, *s, cmp.AllowUnexported(settings{})); d != "" {
		t.Errorf("defaults (-want +got):\n%s", d)
	}
	all := Options{Epochs: 3, BatchSize: 8, MaxSteps: 10, Temperature: 4, Alpha: 0, Optimizer: SGD, LearningRate: 0.5,
		Schedule: ScheduleStep, Momentum: 0, WeightDecay: 0.25, Seed: 9, Threads: 3}
	if s, err = all.resolve(); err != nil {
		t.Fatal(err)
	}
	want = settings{epochs: 3, batch: 8, maxSteps: 10, temp: 4, alpha: 0, optimizer: SGD, lr: 0.5,
		schedule: ScheduleStep, momentum: 0, decay: 0.25, seed: 9}
	if d := cmp.Diff(want, *s, cmp.AllowUnexported(settings{})); d != "" {
		t.Errorf("every option set (-want +got):\n%s", d)
	}
}

// TestOptionsErrors: Validate names the training option at fault. The
// zero Options is not usable: it has no epochs.
func TestOptionsErrors(t *testing.T) {
	with := func(f func(o *Options)) Options {
		o := Defaults()
		f(&o)
		return o
	}
	for _, tc := range []struct {
		opts Options
		say  string
	}{
		{Options{}, "distill.epochs 0: want 1 to 1000"},
		{with(func(o *Options) { o.Epochs = 1001 }), "distill.epochs 1001: want 1 to 1000"},
		{with(func(o *Options) { o.BatchSize = 0 }), "distill.batchSize 0: want 1 to 65536"},
		{with(func(o *Options) { o.BatchSize = 65537 }), "distill.batchSize 65537: want 1 to 65536"},
		{with(func(o *Options) { o.MaxSteps = -1 }), "distill.maxSteps -1: want 0 (no cap) or more"},
		{with(func(o *Options) { o.Temperature = -2 }), "distill.temperature -2: want 0 (auto) or a number in (0, 1e+06]"},
		{with(func(o *Options) { o.Temperature = 2e6 }), "distill.temperature 2e+06: want 0 (auto) or a number in (0, 1e+06]"},
		{with(func(o *Options) { o.Alpha = 1.5 }), "distill.alpha 1.5: want a number in [0, 1]"},
		{with(func(o *Options) { o.Alpha = math.NaN() }), "distill.alpha NaN: want a number in [0, 1]"},
		{with(func(o *Options) { o.LearningRate = 0 }), "distill.learningRate 0: want a number in (0, 10]"},
		{with(func(o *Options) { o.Momentum = 1 }), "distill.momentum 1: want a number in [0, 1)"},
		{with(func(o *Options) { o.WeightDecay = -0.1 }), "distill.weightDecay -0.1: want a number in [0, 1]"},
		{with(func(o *Options) { o.Optimizer = "" }), `distill.optimizer "": want adam or sgd`},
		{with(func(o *Options) { o.Schedule = "linear" }), `distill.schedule "linear": want constant, cosine or step`},
	} {
		err := tc.opts.Validate()
		if !errors.Is(err, ErrSpec) || err.Error() != "invalid distill spec: "+tc.say {
			t.Errorf("%+v: error %v, want ErrSpec saying %q", tc.opts, err, tc.say)
		}
	}
}
