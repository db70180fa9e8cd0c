package eval_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/eval"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxpb"
	"github.com/kompress/kompress/runner/ort"
	"github.com/kompress/kompress/runner/ort/orttest"
)

// mnist-8's figures worked out from its architecture: Conv 1->8 5x5 on
// 28x28 (same padding) = 6272 outputs x 25, Conv 8->16 5x5 on 14x14 =
// 3136 outputs x 200, MatMul 256->10 = 10 x 256. Parameters: 200 + 8 +
// 3200 + 16 + 2560 + 10 float values; the two Reshape shapes are not
// parameters.
const (
	mnistMACs   = 6272*25 + 3136*200 + 10*256
	mnistParams = 200 + 8 + 3200 + 16 + 2560 + 10
)

// plainAccuracy scores an mnist model the straightforward way: one
// session, one image per run, argmax against the label.
func plainAccuracy(t *testing.T, model []byte, d *dataset.Dataset) float64 {
	t.Helper()
	m, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	return orttest.MNIST8Accuracy(t, m, d)
}

func TestMNISTAccuracyAndSelfFidelity(t *testing.T) {
	orttest.Require(t)
	model := readModel(t, "mnist-8.onnx")
	data := mnist1k(t)
	tests := []struct {
		name    string
		samples int
		want    int
	}{
		{"all 1000 samples", 0, 1000},
		{"capped at 100 samples", 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := plainAccuracy(t, model, data.Take(tc.want))
			if tc.want == 1000 && want != 0.987 {
				t.Errorf("plain ONNX Runtime accuracy on the 1k sample is %v, NOTES.md says 0.987", want)
			}
			var calls [][2]int
			rep, err := eval.Evaluate(context.Background(), eval.Request{
				Model: model, Name: "mnist-8.onnx", Source: model, Data: data, Threads: 2,
				Spec:     eval.Settings{Samples: tc.samples, LatencyRuns: 5},
				Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(rep.Cosine-1) > 1e-6 {
				t.Errorf("cosine of the model against itself is %v, want 1 within 1e-6", rep.Cosine)
			}
			got := rep
			got.Cosine, got.LatencyP50, got.LatencyP95 = 0, 0, 0
			if len(got.Outputs) == 1 {
				got.Outputs = []eval.OutputFidelity{got.Outputs[0]}
				got.Outputs[0].Cosine = 0
			}
			wantRep := eval.Report{
				Bytes: int64(len(model)), SourceBytes: int64(len(model)),
				Params: mnistParams, NonzeroParams: mnistParams,
				MACs: mnistMACs, MACsByOp: map[string]int64{"Conv": 6272*25 + 3136*200, "MatMul": 2560},
				Samples: tc.want, InputShapes: map[string][]int64{"Input3": {1, 28, 28}},
				Labeled: true, Accuracy: want, SourceAccuracy: want,
				Compared: true, Top1Agreement: 1,
				// The model against itself: no error at all.
				Outputs: []eval.OutputFidelity{{Name: "Plus214_Output_0", Kind: eval.OutputScores, Classes: 10, Positions: 1,
					Top1Agreement: 1, SNRDb: compare.MaxSNRDb}},
				LatencyBatchSize: 1,
			}
			if diff := cmp.Diff(wantRep, got); diff != "" {
				t.Errorf("report (-want +got):\n%s", diff)
			}
			checkProgress(t, calls, tc.want)
			if !(rep.LatencyP50 > 0 && rep.LatencyP50 <= rep.LatencyP95) {
				t.Errorf("latency p50 %v, p95 %v: want 0 < p50 <= p95", rep.LatencyP50, rep.LatencyP95)
			}
		})
	}
}

// checkProgress wants done to grow to total and total to stay fixed.
func checkProgress(t *testing.T, calls [][2]int, total int) {
	t.Helper()
	if len(calls) == 0 {
		t.Fatal("Progress was never called")
	}
	prev := 0
	for _, c := range calls {
		if c[1] != total || c[0] <= prev || c[0] > total {
			t.Fatalf("progress calls %v: want done increasing to total %d", calls, total)
		}
		prev = c[0]
	}
	if prev != total {
		t.Errorf("last progress call %v, want done = %d", calls[len(calls)-1], total)
	}
}

// damage edits the float weights of mnist-8 and returns the new model and
// how many weights it set to zero.
func damage(t *testing.T, model []byte, edit func(name string, vals []float32) int) ([]byte, int) {
	t.Helper()
	m, err := onnx.Load(model)
	if err != nil {
		t.Fatal(err)
	}
	zeroed := 0
	for _, w := range m.Weights() {
		if w.DType != onnx.Float {
			continue
		}
		vals, err := w.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		vals = append([]float32(nil), vals...)
		zeroed += edit(w.Name, vals)
		if err := w.Set(onnx.NewTensor(w.Dims, vals)); err != nil {
			t.Fatal(err)
		}
	}
	return modelBytes(t, m), zeroed
}

// TestDamagedModel compares damaged copies of mnist-8 with the original:
// agreement, cosine and accuracy must all go down, and zeroed weights show
// in nonzeroParams and sparsity.
func TestDamagedModel(t *testing.T) {
	orttest.Require(t)
	model := readModel(t, "mnist-8.onnx")
	data := mnist1k(t)
	source := plainAccuracy(t, model, data)
	tests := []struct {
		name string
		edit func(name string, vals []float32) int
	}{
		{"first Conv weights negated", func(name string, vals []float32) int {
			if name == "Parameter5" {
				for i := range vals {
					vals[i] = -vals[i]
				}
			}
			return 0
		}},
		{"every weight with an odd index zeroed", func(name string, vals []float32) int {
			n := 0
			for i := range vals {
				if i%2 == 1 && vals[i] != 0 {
					vals[i] = 0
					n++
				}
			}
			return n
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			damaged, zeroed := damage(t, model, tc.edit)
			rep, err := eval.Evaluate(context.Background(), eval.Request{
				Model: damaged, Name: "damaged", Source: model, Data: data, Threads: 2,
				Spec: eval.Settings{LatencyRuns: 1},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("accuracy %v (source %v), agreement %v, cosine %v", rep.Accuracy, rep.SourceAccuracy, rep.Top1Agreement, rep.Cosine)
			if rep.SourceAccuracy != source {
				t.Errorf("source accuracy %v, want %v", rep.SourceAccuracy, source)
			}
			if !(rep.Accuracy < source) || !(rep.AccuracyDrop() > 0) {
				t.Errorf("accuracy %v (drop %v), want below the source's %v", rep.Accuracy, rep.AccuracyDrop(), source)
			}
			if !(rep.Top1Agreement < 1) || !(rep.Cosine < 0.99) {
				t.Errorf("agreement %v, cosine %v: want both lower than for an identical model", rep.Top1Agreement, rep.Cosine)
			}
			if want := int64(mnistParams - zeroed); rep.Params != mnistParams || rep.NonzeroParams != want {
				t.Errorf("params %d, non-zero %d; want %d and %d", rep.Params, rep.NonzeroParams, mnistParams, want)
			}
			if want := float64(zeroed) / mnistParams; math.Abs(rep.Sparsity-want) > 1e-12 {
				t.Errorf("sparsity %v, want %v", rep.Sparsity, want)
			}
		})
	}
}

// TestRefusesModelsONNXRuntimeCannotRun: the runner must never publish a
// model ONNX Runtime cannot load or run, so Evaluate fails, naming it.
func TestRefusesModelsONNXRuntimeCannotRun(t *testing.T) {
	orttest.Require(t)
	mnist := readModel(t, "mnist-8.onnx")
	unknownOp := newGraph(t).input("x", onnx.Float, "N", 4).
		node("NoSuchOp", []string{"x"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	badReshape := newGraph(t).input("x", onnx.Float, "N", 4).
		init("shape", onnx.NewTensor([]int64{1}, []int64{3})).
		node("Reshape", []string{"x", "shape"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	nan := newGraph(t).input("x", onnx.Float, "N", 4).
		node("Sub", []string{"x", "x"}, []string{"zero"}).
		node("Div", []string{"zero", "zero"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	tests := []struct {
		name    string
		model   []byte
		source  []byte
		wantErr []string
	}{
		{"truncated model", mnist[:len(mnist)/2], nil, []string{"bad.onnx"}},
		{"not a model", []byte("this is not protobuf"), nil, []string{"bad.onnx"}},
		{"unknown operator", unknownOp, nil, []string{"bad.onnx", "NoSuchOp"}},
		{"fails when run", badReshape, nil, []string{"bad.onnx", "ONNX Runtime run failed"}},
		{"outputs NaN", nan, nil, []string{"bad.onnx", `output "y" is NaN for sample 0`}},
		{"source cannot load", mnist, mnist[:100], []string{"source.onnx"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := eval.Evaluate(context.Background(), eval.Request{
				Model: tc.model, Name: "bad.onnx", Source: tc.source, SourceName: "source.onnx", Threads: 1,
				Spec: eval.Settings{LatencyRuns: 1},
			})
			if err == nil {
				t.Fatal("Evaluate accepted the model")
			}
			t.Log(err)
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	orttest.Require(t)
	mnist := readModel(t, "mnist-8.onnx")
	twoInputs := newGraph(t).input("a", onnx.Float, "N", 4).input("b", onnx.Float, "N", 4).
		node("Add", []string{"a", "b"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	wrongShape := &dataset.Dataset{Name: "wrong.npz", Shape: []int{3, 5}, X: make([]float32, 15)}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		req     eval.Request
		wantErr string
	}{
		{"empty model", nil, eval.Request{Name: "m.onnx"}, "m.onnx: the model is empty"},
		{"negative samples", nil, eval.Request{Model: mnist, Spec: eval.Settings{Samples: -1}}, "eval: Spec.Samples is -1"},
		{"negative latency runs", nil, eval.Request{Model: mnist, Spec: eval.Settings{LatencyRuns: -2}}, "eval: Spec.LatencyRuns is -2"},
		{"dataset of the wrong shape", nil, eval.Request{Model: mnist, Name: "m.onnx", Data: wrongShape}, `wrong.npz: x has shape [3 5], model input "Input3" expects [N 1 28 28]`},
		// A model with several inputs takes one array per input, named
		// by the input: x alone cannot feed it.
		{"dataset for a model with two inputs", nil, eval.Request{Model: twoInputs, Name: "two.onnx", Data: mnist1k(t)}, `two.onnx: mnist-test-1k.npz: no array "a" for model input "a", which takes FLOAT [? 4]; the file has [x y]`},
		{"source with other inputs", nil, eval.Request{Model: mnist, Name: "m.onnx", Source: twoInputs, SourceName: "two.onnx"}, "they cannot be fed the same data"},
		{"Inputs names no input", nil, eval.Request{Model: twoInputs, Name: "two.onnx", Inputs: map[string]feed.Spec{"c": {Shape: []int64{4}}}}, `two.onnx: evaluation.inputs names input "c"; the model's inputs are ["a" "b"]`},
		{"Inputs of the wrong rank", nil, eval.Request{Model: twoInputs, Name: "two.onnx", Inputs: map[string]feed.Spec{"a": {Shape: []int64{4, 1}}}}, `evaluation.inputs["a"] is [4 1]: input "a" has shape [-1 4], expected 1 sample dims`},
		{"Inputs against a fixed dim", nil, eval.Request{Model: twoInputs, Name: "two.onnx", Inputs: map[string]feed.Spec{"a": {Shape: []int64{5}}}}, `input "a" has the fixed shape [-1 4]`},
		{"canceled", canceled, eval.Request{Model: mnist, Data: mnist1k(t)}, context.Canceled.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := tc.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			tc.req.Threads = 1
			_, err := eval.Evaluate(ctx, tc.req)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
			}
			if tc.ctx == canceled && !errors.Is(err, context.Canceled) {
				t.Errorf("error %v is not context.Canceled", err)
			}
		})
	}
}

func TestLatency(t *testing.T) {
	orttest.Require(t)
	mnist := readModel(t, "mnist-8.onnx")
	conv := newGraph(t).input("x", onnx.Float, "N", 3, 16, 16).
		init("w", onnx.NewTensor([]int64{8, 3, 3, 3}, floats(216, 0.01, 0.5, 0))).
		node("Conv", []string{"x", "w"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	tests := []struct {
		name      string
		model     []byte
		batch     int
		wantBatch int
	}{
		{"fixed batch 1 overrides the spec", mnist, 8, 1},
		{"dynamic batch at the spec's size", conv, 4, 4},
		{"default batch size", conv, 0, eval.DefaultLatencyBatchSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := eval.Evaluate(context.Background(), eval.Request{
				Model: tc.model, Name: tc.name, Threads: 1,
				Spec: eval.Settings{Samples: 1, LatencyBatchSize: tc.batch, LatencyRuns: 20},
			})
			if err != nil {
				t.Fatal(err)
			}
			if rep.LatencyBatchSize != tc.wantBatch {
				t.Errorf("latency batch size %d, want %d", rep.LatencyBatchSize, tc.wantBatch)
			}
			if !(rep.LatencyP50 > 0 && rep.LatencyP50 <= rep.LatencyP95) {
				t.Errorf("latency p50 %v, p95 %v: want 0 < p50 <= p95", rep.LatencyP50, rep.LatencyP95)
			}
		})
	}
}

// TestPPOCRSynthesizedInputs evaluates PaddleOCR's detector (dynamic
// [N,3,H,W], weights in Constant nodes) with no dataset. Its MACs are
// a*H*W + c: every convolution scales with the image except the 1x1 ones
// of its squeeze-excitation blocks, which run on globally pooled features.
// So the counts at 320x320, 320x640 and 640x640 must satisfy
// MACs(640x640) = 3 MACs(320x640) - 2 MACs(320x320) exactly.
func TestPPOCRSynthesizedInputs(t *testing.T) {
	orttest.Require(t)
	model := readModel(t, "ppocr-det.onnx")
	run := func(shapes map[string][]int64, samples int) eval.Report {
		var specs map[string]feed.Spec
		for name, dims := range shapes {
			specs = map[string]feed.Spec{name: {Shape: dims}}
		}
		rep, err := eval.Evaluate(context.Background(), eval.Request{
			Model: model, Name: "ppocr-det.onnx", Source: model, Inputs: specs, Threads: 2,
			Spec: eval.Settings{Samples: samples, LatencyRuns: 2},
		})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run(nil, 2)
	t.Logf("ppocr-det at 3x320x320: %d MACs %v, %d params, latency p50 %v", rep.MACs, rep.MACsByOp, rep.Params, rep.LatencyP50)
	if diff := cmp.Diff(map[string][]int64{"x": {3, eval.DefaultDynamicDim, eval.DefaultDynamicDim}}, rep.InputShapes); diff != "" {
		t.Errorf("input shapes (-want +got):\n%s", diff)
	}
	if !rep.Synthesized || rep.Labeled || !rep.Compared || rep.Samples != 2 {
		t.Errorf("synthesized %v, labeled %v, compared %v, samples %d: want true, false, true, 2", rep.Synthesized, rep.Labeled, rep.Compared, rep.Samples)
	}
	if rep.Top1Agreement != 1 || math.Abs(rep.Cosine-1) > 1e-6 {
		t.Errorf("self agreement %v, cosine %v: want 1", rep.Top1Agreement, rep.Cosine)
	}
	// About 1.1 M parameters (4.7 MB of float32 weights); MobileNetV3-like
	// backbones run a few hundred MACs per parameter at this size.
	if rep.Params < 1_000_000 || rep.Params > 1_300_000 {
		t.Errorf("params %d, want about 1.1 M (the file holds 4.7 MB of float32 weights)", rep.Params)
	}
	if rep.MACsByOp["Conv"] <= 0 || rep.MACsByOp["ConvTranspose"] <= 0 {
		t.Errorf("MACs by op %v: want Conv and ConvTranspose counted", rep.MACsByOp)
	}
	wide := run(map[string][]int64{"x": {3, 320, 640}}, 1)
	big := run(map[string][]int64{"x": {3, 640, 640}}, 1)
	t.Logf("MACs at 320x640: %d, at 640x640: %d", wide.MACs, big.MACs)
	if want := 3*wide.MACs - 2*rep.MACs; big.MACs != want {
		t.Errorf("MACs at 640x640 = %d, want 3 x %d - 2 x %d = %d", big.MACs, wide.MACs, rep.MACs, want)
	}
	if c := 2*rep.MACs - wide.MACs; c <= 0 || c > rep.MACs/100 {
		t.Errorf("MACs that do not scale with the image: %d, want a small positive part of %d", c, rep.MACs)
	}
}

// TestFloat16Model evaluates mnist-8 converted to float16 weights, inputs
// and outputs against the float32 original on the same images.
func TestFloat16Model(t *testing.T) {
	orttest.Require(t)
	source := readModel(t, "mnist-8.onnx")
	m, err := onnx.Load(source)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range m.Weights() {
		if w.DType != onnx.Float {
			continue
		}
		vals, err := w.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Set(onnx.NewTensor(w.Dims, onnx.Float16s(vals))); err != nil {
			t.Fatal(err)
		}
	}
	g := m.Proto.GetGraph()
	g.ValueInfo = nil
	// mnist-8 (IR 3) lists its initializers as inputs too: only Input3
	// is fed.
	for _, v := range []*onnxpb.ValueInfoProto{g.GetInput()[0], g.GetOutput()[0]} {
		v.GetType().GetTensorType().ElemType = proto32(int32(onnx.Float16))
	}
	fp16 := modelBytes(t, m)
	s, err := ort.NewSession("fp16", fp16, ort.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if s.Inputs[0].DType != onnx.Float16 || s.Outputs[0].DType != onnx.Float16 {
		t.Fatalf("the converted model takes %v and gives %v, want FLOAT16 both", s.Inputs[0].DType, s.Outputs[0].DType)
	}
	s.Close()
	rep, err := eval.Evaluate(context.Background(), eval.Request{
		Model: fp16, Name: "mnist-8-fp16", Source: source, Data: mnist1k(t), Threads: 2,
		Spec: eval.Settings{LatencyRuns: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("fp16: accuracy %v (source %v), agreement %v, cosine %v, %d bytes", rep.Accuracy, rep.SourceAccuracy, rep.Top1Agreement, rep.Cosine, rep.Bytes)
	if math.Abs(rep.AccuracyDrop()) > 0.003 || rep.Top1Agreement < 0.99 || rep.Cosine < 0.9999 {
		t.Errorf("fp16 accuracy drop %v, agreement %v, cosine %v: want |drop| <= 0.003, agreement >= 0.99, cosine >= 0.9999", rep.AccuracyDrop(), rep.Top1Agreement, rep.Cosine)
	}
	if rep.Params != mnistParams || rep.MACs != mnistMACs {
		t.Errorf("params %d, MACs %d: float16 weights are the same parameters (%d) and MACs (%d)", rep.Params, rep.MACs, mnistParams, mnistMACs)
	}
}

func proto32(v int32) *int32 { return &v }

// TestFixedBatchOf4 feeds 6 labelled samples to a model whose batch is
// fixed at 4: the last run is padded with repeats that must not be scored,
// labels must stay with their samples, and MACs are per sample.
func TestFixedBatchOf4(t *testing.T) {
	orttest.Require(t)
	// y = x W with W the 3x3 identity: the argmax of each sample is its
	// label, so accuracy is exactly 1 only if samples and labels line up.
	model := newGraph(t).input("x", onnx.Float, 4, 3).
		init("w", onnx.NewTensor([]int64{3, 3}, []float32{1, 0, 0, 0, 1, 0, 0, 0, 1})).
		node("MatMul", []string{"x", "w"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	data := &dataset.Dataset{Name: "six.npz", Shape: []int{6, 3}, X: make([]float32, 18), Labels: make([]int64, 6)}
	for i := range 6 {
		label := (i * 2) % 3
		data.X[i*3+label] = float32(i + 1)
		data.Labels[i] = int64(label)
	}
	var calls [][2]int
	rep, err := eval.Evaluate(context.Background(), eval.Request{
		Model: model, Name: "fixed4", Source: model, Data: data, Threads: 2,
		Spec:     eval.Settings{LatencyBatchSize: 1, LatencyRuns: 3},
		Progress: func(done, total int) { calls = append(calls, [2]int{done, total}) },
	})
	if err != nil {
		t.Fatal(err)
	}
	checkProgress(t, calls, 6)
	type figures struct {
		Samples            int
		Accuracy, Agree    float64
		MACs               int64
		LatencyBatch       int
		Params, NonzeroPar int64
	}
	got := figures{rep.Samples, rep.Accuracy, rep.Top1Agreement, rep.MACs, rep.LatencyBatchSize, rep.Params, rep.NonzeroParams}
	// 9 MACs per sample; the identity has 3 non-zero values of 9.
	if diff := cmp.Diff(figures{6, 1, 1, 9, 4, 9, 3}, got); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}

// TestSeveralInputs scores a model with three inputs from a dataset with
// one array per input: samples a (float) and ids (int32 in the file,
// INT64 in the model), and a scale scalar fed with every batch. y =
// a·scale + ids puts each sample's largest value at its label only if
// every input reaches the model with the right sample.
func TestSeveralInputs(t *testing.T) {
	orttest.Require(t)
	model := newGraph(t).input("a", onnx.Float, "N", 3).input("ids", onnx.Int64, "N", 3).input("scale", onnx.Float).
		node("Mul", []string{"a", "scale"}, []string{"as"}).
		node("Cast", []string{"ids"}, []string{"idsf"}, onnx.AttrInt("to", int64(onnx.Float))).
		node("Add", []string{"as", "idsf"}, []string{"y"}).output("y", onnx.Float).bytes(13)
	const n = 7
	a, ids, labels := make([]float32, 3*n), make([]int32, 3*n), make([]int64, n)
	for i := range n {
		labels[i] = int64(i % 3)
		// a alone points at the label, ids alone at the next class: the
		// scale (10) makes a win.
		a[3*i+i%3] = 1
		ids[3*i+(i+1)%3] = 5
	}
	data := &dataset.Dataset{Name: "three.npz", Labels: labels, Arrays: []dataset.Array{
		{Name: "a", Shape: []int{n, 3}, Data: a},
		{Name: "ids", Shape: []int{n, 3}, Data: ids},
		{Name: "scale", Shape: []int{}, Data: []float32{10}},
	}}
	rep, err := eval.Evaluate(context.Background(), eval.Request{
		Model: model, Name: "three.onnx", Source: model, Data: data, Threads: 2,
		Spec: eval.Settings{LatencyRuns: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	type figures struct {
		Samples          int
		Accuracy, Agree  float64
		InputShapes      map[string][]int64
		Labeled, Compare bool
	}
	got := figures{rep.Samples, rep.Accuracy, rep.Top1Agreement, rep.InputShapes, rep.Labeled, rep.Compared}
	want := figures{n, 1, 1, map[string][]int64{"a": {3}, "ids": {3}, "scale": {}}, true, true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("figures (-want +got):\n%s", diff)
	}
}
