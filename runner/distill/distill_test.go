package distill

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/protobuf/proto"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// tinyWeights are the teacher's weights of tinyModel.
func tinyWeights() []weight {
	rng := rand.New(rand.NewPCG(7, 8))
	return []weight{
		randWeight(rng, "w1", -1, 1, 2, 1, 3, 3), randWeight(rng, "b1", -0.5, 0.5, 2),
		randWeight(rng, "w2", -1, 1, 18, 4), randWeight(rng, "b2", -0.5, 0.5, 4),
	}
}

// tinyModel is a small CNN: Conv -> Tanh -> Flatten -> Gemm. With
// constants, the Gemm's weights are Constant nodes instead of
// initializers.
func tinyModel(t testing.TB, ws []weight, constants bool) *onnx.Model {
	t.Helper()
	nodes := []*onnxpb.NodeProto{
		node("Conv", []string{"x", "w1", "b1"}, []string{"c"}, onnx.AttrInts("strides", 2, 2)),
		node("Tanh", []string{"c"}, []string{"a"}),
		node("Flatten", []string{"a"}, []string{"f"}),
		node("Gemm", []string{"f", "w2", "b2"}, []string{"y"}),
	}
	inits := ws
	if constants {
		inits = ws[:2]
		var consts []*onnxpb.NodeProto
		for _, w := range ws[2:] {
			tp, err := onnx.TensorToProto(onnx.NewTensor(w.dims, w.vals), "")
			if err != nil {
				t.Fatal(err)
			}
			consts = append(consts, onnx.NewNode("Constant", w.name+"_const", nil, []string{w.name}, onnx.AttrTensor("value", tp)))
		}
		nodes = append(consts, nodes...)
	}
	return testModel(t, 13, []onnx.Dim{"N", 1, 7, 7}, inits, nil, nodes...)
}

// perturb returns ws with noise of the given size added.
func perturb(ws []weight, size float32) []weight {
	rng := rand.New(rand.NewPCG(9, 10))
	out := make([]weight, len(ws))
	for i, w := range ws {
		out[i] = weight{name: w.name, dims: w.dims, vals: append([]float32(nil), w.vals...)}
		for j := range out[i].vals {
			out[i].vals[j] += size * (2*rng.Float32() - 1)
		}
	}
	return out
}

func randomDataset(n int, sample []int, labels int) *dataset.Dataset {
	rng := rand.New(rand.NewPCG(11, 12))
	d := &dataset.Dataset{Name: "random.npz", Shape: append([]int{n}, sample...), X: randFloats(rng, n*prod(sample), -1, 1)}
	if labels > 0 {
		d.Labels = make([]int64, n)
		for i := range d.Labels {
			d.Labels[i] = int64(rng.IntN(labels))
		}
	}
	return d
}

func modelBytes(t testing.TB, m *onnx.Model) []byte {
	t.Helper()
	b, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestConvergesToTeacher distills a student with the teacher's
// architecture and perturbed weights: it must come back to the teacher.
// Softmax cannot see a constant added to every logit of a sample, so
// logits and the last layer's weights are compared centered over the
// classes. Half of the student's weights are Constant nodes: both kinds
// are written back in place, and nothing else in the graph changes. It
// runs with the AVX2 kernels and with their pure Go fallback.
func TestConvergesToTeacher(t *testing.T) {
	orttest.Require(t)
	eachKernelSet(t, testConvergesToTeacher)
}

func testConvergesToTeacher(t *testing.T) {
	ws := tinyWeights()
	teacher := modelBytes(t, tinyModel(t, ws, false))
	student := tinyModel(t, perturb(ws, 0.3), true)
	original := proto.Clone(student.Proto).(*onnxpb.ModelProto)
	data := randomDataset(512, []int{1, 7, 7}, 0)
	before := logitGap(t, student, teacher, data)

	opts := withDefaults(func(o *Options) {
		o.Epochs, o.BatchSize, o.Temperature, o.Alpha, o.LearningRate, o.Schedule = 150, 32, 1, 1, 0.01, ScheduleCosine
	})
	out, rep, err := Distill(context.Background(), student, teacher, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	after := logitGap(t, out, teacher, data)
	t.Logf("largest centered logit difference to the teacher: %.3g before, %.3g after; loss %.3g -> %.3g in %d steps",
		before, after, rep.FirstLoss, rep.FinalLoss, rep.Steps)
	if after > 1e-3 {
		t.Errorf("student's logits differ from the teacher's by up to %.3g after distillation (%.3g before): want below 1e-3", after, before)
	}
	const classes = 4
	for _, w := range ws {
		got, err := out.Weight(w.name).Float32s()
		if err != nil {
			t.Fatal(err)
		}
		want := w.vals
		if w.name == "w2" || w.name == "b2" {
			got, want = centered(got, classes), centered(want, classes)
		}
		for j, v := range got {
			if math.Abs(float64(v-want[j])) > 1e-2 {
				t.Errorf("weight %s[%d] = %.4f, teacher's %.4f", w.name, j, v, want[j])
				break
			}
		}
	}
	checkInPlace(t, original, out.Proto)
}

// centered subtracts from each row of k values its mean.
func centered(v []float32, k int) []float32 {
	out := make([]float32, len(v))
	for r := 0; r < len(v)/k; r++ {
		var m float32
		for _, x := range v[r*k : (r+1)*k] {
			m += x / float32(k)
		}
		for i, x := range v[r*k : (r+1)*k] {
			out[r*k+i] = x - m
		}
	}
	return out
}

// logitGap is the largest difference between the student's and the
// teacher's centered outputs on d, relative to the teacher's largest.
func logitGap(t testing.TB, student *onnx.Model, teacher []byte, d *dataset.Dataset) float64 {
	t.Helper()
	s, k, err := outputs(context.Background(), "student", modelBytes(t, student), d, d.Len(), 2)
	if err != nil {
		t.Fatal(err)
	}
	tt, _, err := outputs(context.Background(), "teacher", teacher, d, d.Len(), 2)
	if err != nil {
		t.Fatal(err)
	}
	return maxRelDiff(centered(s, k), centered(tt, k))
}

// checkInPlace checks that only weight values changed between two
// versions of a model: same nodes (Constant nodes still Constant), same
// initializer names, same inputs and outputs.
func checkInPlace(t *testing.T, before, after *onnxpb.ModelProto) {
	t.Helper()
	strip := func(m *onnxpb.ModelProto) *onnxpb.ModelProto {
		m = proto.Clone(m).(*onnxpb.ModelProto)
		for _, tp := range m.GetGraph().GetInitializer() {
			tp.RawData, tp.FloatData = nil, nil
		}
		for _, n := range m.GetGraph().GetNode() {
			for _, a := range n.GetAttribute() {
				if a.GetT() != nil {
					a.T.RawData, a.T.FloatData = nil, nil
				}
			}
		}
		return m
	}
	if d := cmp.Diff(strip(before), strip(after), cmp.Comparer(proto.Equal)); d != "" {
		t.Errorf("the student's graph changed beyond its weight values (-before +after):\n%s", d)
	}
	if proto.Equal(before, after) {
		t.Error("no weight changed")
	}
}

// TestMasksKept distills a student whose filters are half zeros: the
// zeros stay exactly zero and the other weights move.
func TestMasksKept(t *testing.T) {
	orttest.Require(t)
	ws := tinyWeights()
	teacher := modelBytes(t, tinyModel(t, ws, false))
	pruned := perturb(ws, 0.3)
	for _, w := range pruned[:1] {
		for j := range w.vals {
			if j%2 == 0 {
				w.vals[j] = 0
			}
		}
	}
	w2 := pruned[2].vals
	for j := range w2 {
		if j%8 != 0 {
			w2[j] = 0
		}
	}
	for _, tc := range []struct {
		name   string
		opts   Options
		sparse bool // the pruned weights are stored as sparse initializers
	}{
		{"adam", withDefaults(func(o *Options) { o.Epochs, o.BatchSize, o.Alpha, o.WeightDecay = 3, 16, 1, 0.01 }), false},
		{"sgd momentum step", withDefaults(func(o *Options) {
			o.Epochs, o.BatchSize, o.Alpha, o.Optimizer, o.LearningRate, o.Momentum, o.Schedule, o.WeightDecay = 3, 16, 1, SGD, 0.05, 0.9, ScheduleStep, 0.01
		}), false},
		{"sparse storage", withDefaults(func(o *Options) { o.Epochs, o.BatchSize, o.Alpha = 3, 16, 1 }), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			student := tinyModel(t, pruned, false)
			if tc.sparse {
				// Only w2 is sparse enough for sparse storage to be smaller.
				if names, err := student.Sparsify([]string{"w1", "w2"}, onnx.LinearIndices); err != nil || len(names) != 1 {
					t.Fatalf("Sparsify: %v %v", names, err)
				}
			}
			out, rep, err := Distill(context.Background(), student, teacher, randomDataset(128, []int{1, 7, 7}, 0), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range []weight{pruned[0], pruned[2]} {
				got, err := out.Weight(w.name).Float32s()
				if err != nil {
					t.Fatal(err)
				}
				moved := 0
				for j, v := range got {
					if w.vals[j] == 0 && v != 0 {
						t.Fatalf("%s[%d] was pruned and is now %g", w.name, j, v)
					}
					if w.vals[j] != 0 && v != w.vals[j] {
						moved++
					}
				}
				if moved == 0 {
					t.Errorf("no unpruned entry of %s moved", w.name)
				}
			}
			if tc.sparse {
				if k := out.Weight("w2").Kind; k != onnx.KindSparseInitializer {
					t.Errorf("w2 is stored as %s after distillation, want it sparse again", k)
				}
			}
			// w1: 9 of 18 zero; w2: 63 of 72 zero.
			want := float64(9+63) / float64(18+72)
			if math.Abs(rep.SparsityBefore-want) > 1e-9 || rep.SparsityAfter != rep.SparsityBefore {
				t.Errorf("sparsity %.4f before, %.4f after: want %.4f both", rep.SparsityBefore, rep.SparsityAfter, want)
			}
			if rep.Masked != 9+63 {
				t.Errorf("masked %d entries, want %d", rep.Masked, 9+63)
			}
		})
	}
}

// TestBadInput checks that every input distillation cannot use is
// refused with a clear error before any training step.
func TestBadInput(t *testing.T) {
	orttest.Require(t)
	ws := tinyWeights()
	teacher := modelBytes(t, tinyModel(t, ws, false))
	rng := rand.New(rand.NewPCG(13, 14))
	wide := append([]weight{}, ws...)
	wide[2], wide[3] = randWeight(rng, "w2", -1, 1, 18, 5), randWeight(rng, "b2", -1, 1, 5)
	exp := testModel(t, 13, []onnx.Dim{"N", 1, 7, 7}, ws, nil,
		node("Conv", []string{"x", "w1", "b1"}, []string{"c"}, onnx.AttrInts("strides", 2, 2)),
		onnx.NewNode("Exp", "exp_1", []string{"c"}, []string{"e"}),
		onnx.NewNode("Erf", "", []string{"e"}, []string{"a"}),
		node("Flatten", []string{"a"}, []string{"f"}),
		node("Gemm", []string{"f", "w2", "b2"}, []string{"y"}))
	data := randomDataset(64, []int{1, 7, 7}, 4)
	unlabeled := randomDataset(64, []int{1, 7, 7}, 0)
	for _, tc := range []struct {
		name    string
		student *onnx.Model
		data    *dataset.Dataset
		opts    Options
		is      error
		want    []string
	}{
		{"labels needed", tinyModel(t, ws, false), unlabeled, Defaults(), ErrBadInput,
			[]string{"distill.alpha 0.7", "random.npz has no labels"}},
		{"teacher and student outputs differ", tinyModel(t, wide, false), data, withDefaults(func(o *Options) { o.Alpha = 1 }), ErrBadInput,
			[]string{"teacher gives 4 outputs per sample and the student test.onnx 5"}},
		{"untrainable operators", exp, data, Defaults(), ErrBadInput,
			[]string{"cannot train 2 node(s)", "Exp ×1 (exp_1)", "Erf ×1 (Erf#2)"}},
		{"dataset shape", tinyModel(t, ws, false), randomDataset(8, []int{1, 6, 6}, 4), Defaults(), ErrBadInput,
			[]string{"samples of shape [1 6 6]", `student input "x" is [-1 1 7 7]`}},
		{"label out of range", tinyModel(t, ws, false), randomDataset(8, []int{1, 7, 7}, 9), Defaults(), ErrBadInput,
			[]string{"is not a class of the 4 outputs"}},
		{"optimizer", tinyModel(t, ws, false), data, withDefaults(func(o *Options) { o.Optimizer = "rmsprop" }), ErrSpec,
			[]string{`distill.optimizer "rmsprop": want adam or sgd`}},
		{"temperature", tinyModel(t, ws, false), data, withDefaults(func(o *Options) { o.Temperature = -2 }), ErrSpec,
			[]string{"distill.temperature -2: want 0 (auto) or a number in (0, 1e+06]"}},
		{"alpha", tinyModel(t, ws, false), data, withDefaults(func(o *Options) { o.Alpha = 1.5 }), ErrSpec,
			[]string{"distill.alpha 1.5: want a number in [0, 1]"}},
		{"no epochs", tinyModel(t, ws, false), data, Options{}, ErrSpec,
			[]string{"distill.epochs 0: want 1 to 1000"}},
		{"empty dataset", tinyModel(t, ws, false), randomDataset(0, []int{1, 7, 7}, 0), Defaults(), ErrBadInput,
			[]string{"needs a dataset with samples"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			steps := 0
			opts := tc.opts
			opts.TeacherName, opts.Progress = "teacher", func(Progress) { steps++ }
			_, _, err := Distill(context.Background(), tc.student, teacher, tc.data, opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if steps > 0 {
				t.Errorf("%d training steps ran before the error", steps)
			}
		})
	}
}

// TestMemoryLimit: under a memory limit (GOMEMLIMIT, set by the runner
// from the pod's limit) too small for one replica's graph or for the
// teacher's outputs, Distill refuses before training and says what to
// change.
func TestMemoryLimit(t *testing.T) {
	orttest.Require(t)
	ws := tinyWeights()
	teacher := modelBytes(t, tinyModel(t, ws, false))
	for _, tc := range []struct {
		name  string
		limit int64
		want  string
	}{
		// 4,096 samples of 4 outputs: 128 KiB of teacher outputs; a
		// batch of 4,096 needs megabytes of graph.
		{"graph", 1 << 20, "lower distill.batchSize"},
		{"teacher outputs", 64 << 10, "the teacher's outputs for the dataset need"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := debug.SetMemoryLimit(tc.limit)
			defer debug.SetMemoryLimit(old)
			_, _, err := Distill(context.Background(), tinyModel(t, ws, false), teacher, randomDataset(4096, []int{1, 7, 7}, 0),
				withDefaults(func(o *Options) { o.Alpha, o.BatchSize = 1, 4096 }))
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v: want a refusal saying %q", err, tc.want)
			}
		})
	}
}

// TestProgress checks the progress reports of a short run.
func TestProgress(t *testing.T) {
	orttest.Require(t)
	ws := tinyWeights()
	teacher := modelBytes(t, tinyModel(t, ws, false))
	var reports []Progress
	_, rep, err := Distill(context.Background(), tinyModel(t, perturb(ws, 0.3), false), teacher, randomDataset(100, []int{1, 7, 7}, 0),
		withDefaults(func(o *Options) {
			o.Alpha, o.BatchSize, o.Epochs, o.MaxSteps = 1, 16, 3, 13
			o.Progress = func(p Progress) { reports = append(reports, p) }
		}))
	if err != nil {
		t.Fatal(err)
	}
	// 100 samples in batches of 16: 6 steps an epoch; 3 epochs would be
	// 18, capped at 13.
	if rep.Steps != 13 || rep.Epochs != 3 {
		t.Errorf("%d steps in %d epochs, want 13 in 3", rep.Steps, rep.Epochs)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	if d := cmp.Diff(Progress{Step: 13, Steps: 13, Epoch: 3, Epochs: 3}, last,
		cmpopts.IgnoreFields(Progress{}, "Loss", "ImagesPerSec", "ETA")); d != "" {
		t.Errorf("last report (-want +got):\n%s", d)
	}
	if last.ETA != 0 || last.ImagesPerSec <= 0 || math.IsNaN(last.Loss) {
		t.Errorf("last report %+v: want ETA 0, a throughput and a loss", last)
	}
}

// TestSoftmaxOutputs distills a teacher and a student that both end in
// Softmax: the teacher's probabilities become log-probabilities, the
// student's loss reads the logits before its Softmax, and the student's
// probabilities come to match the teacher's.
func TestSoftmaxOutputs(t *testing.T) {
	orttest.Require(t)
	withSoftmax := func(ws []weight) *onnx.Model {
		return testModel(t, 13, []onnx.Dim{"N", 1, 7, 7}, ws, nil,
			node("Conv", []string{"x", "w1", "b1"}, []string{"c"}, onnx.AttrInts("strides", 2, 2)),
			node("Tanh", []string{"c"}, []string{"a"}),
			node("Flatten", []string{"a"}, []string{"f"}),
			node("Gemm", []string{"f", "w2", "b2"}, []string{"l"}),
			node("Softmax", []string{"l"}, []string{"y"}))
	}
	ws := tinyWeights()
	teacher := modelBytes(t, withSoftmax(ws))
	student := withSoftmax(perturb(ws, 0.3))
	data := randomDataset(256, []int{1, 7, 7}, 0)
	before := logitGap(t, student, teacher, data)
	out, rep, err := Distill(context.Background(), student, teacher, data,
		withDefaults(func(o *Options) { o.Epochs, o.BatchSize, o.Temperature, o.Alpha, o.LearningRate = 40, 32, 1, 1, 0.01 }))
	if err != nil {
		t.Fatal(err)
	}
	after := logitGap(t, out, teacher, data)
	t.Logf("largest probability difference to the teacher (relative): %.3g before, %.3g after", before, after)
	if !rep.TeacherProbabilities {
		t.Error("the teacher's probabilities were not recognized")
	}
	if after > before/20 {
		t.Errorf("probabilities differ from the teacher's by %.3g after, %.3g before: want 20 times closer", after, before)
	}
}

// TestRefusesRealModel: PaddleOCR's detector uses Resize and
// ConvTranspose, which distillation does not train. The refusal names
// them (and a few of their nodes) in a message short enough for a pod's
// termination message.
func TestRefusesRealModel(t *testing.T) {
	m, err := onnx.LoadFile("../../testdata/models/ppocr-det.onnx")
	if err != nil {
		t.Fatal(err)
	}
	_, err = newPlan(m)
	var ue *UnsupportedError
	if !errors.As(err, &ue) {
		t.Fatalf("error %v: want an UnsupportedError", err)
	}
	msg := err.Error()
	for _, want := range []string{"cannot train 8 node(s)", "Resize ×6 (p2o.Resize.0, p2o.Resize.1, p2o.Resize.2 and 3 more)",
		"ConvTranspose ×2 (p2o.ConvTranspose.0, p2o.ConvTranspose.2)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if len(msg) > 1024 {
		t.Errorf("error is %d bytes long: want it under 1 KiB", len(msg))
	}
}
