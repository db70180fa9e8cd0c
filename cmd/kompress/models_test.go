package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/onnx/onnxtest"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
)

// modelJob writes a CompressionJob for one of testdata/models' real
// models (read in place) with its output in a temporary directory; spec
// holds the lines of spec after source and output, indented by two.
func modelJob(t *testing.T, model, spec string) (jobFile, out string) {
	t.Helper()
	dir := t.TempDir()
	out = filepath.Join(dir, "out")
	job := fmt.Sprintf(`apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: %s}
spec:
  source: {uri: %s}
  output: {uri: %s}
%s`, jobName(t.Name()),
		storage.FileURI(onnxtest.ModelPath(model)), storage.FileURI(out), spec)
	jobFile = filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return jobFile, out
}

// jobName makes a CompressionJob name of a test's name.
func jobName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	return strings.Trim(b.String()[:min(b.Len(), 60)], "-")
}

// testdataURI is a file:// URI of testdata/models/<path>.
func testdataURI(path string) string { return storage.FileURI(onnxtest.ModelPath(path)) }

// metric parses a metric, failing the test when it is absent.
func metric(t *testing.T, m map[string]string, name string) float64 {
	t.Helper()
	v, ok := m[name]
	if !ok {
		t.Fatalf("metric %s was not reported; metrics: %v", name, m)
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		t.Fatalf("metric %s = %q: %v", name, v, err)
	}
	return f
}

// The real models through `kompress run`: a voice-activity
// detector with three inputs (audio frames, a recurrent state whose batch
// is its second dimension, an int64 sample-rate scalar) and If branches
// holding its convolutions, fed a dataset of real speech or synthesized
// inputs from spec.evaluation.inputs; a wake-word MLP with one output
// value, gated by relative error. Each figure bound would break if the
// metric were measured as before (one-value outputs had cosine 1 by
// construction, sequence outputs one argmax over T x C values).
func TestRealModels(t *testing.T) {
	orttest.Require(t)
	speech := "  dataset: {uri: " + testdataURI("silero-vad/speech.npz") + "}\n"
	vadInputs := `  evaluation:
    latencyRuns: 3
    inputs:
    - {name: input, shape: [512], range: ["-1", "1"]}
    - {name: state, shape: [2, 1, 128], value: "0"}
    - {name: sr, value: "16000"}
`
	deepaInputs := `  evaluation:
    latencyRuns: 3
    inputs:
    - {name: "onnx::Flatten_0", range: ["-1", "1"]}
`
	type bound struct {
		metric   string
		min, max float64
	}
	tests := []struct {
		name   string
		model  string
		spec   string
		code   int
		reason string
		// bounds every reported metric must be within; absent lists
		// metrics that must not be reported.
		bounds []bound
		absent []string
		// maxSize bounds the output's bytes, a fraction of the source's
		// (0: not bounded).
		maxSize float64
		stderr  string
	}{
		{
			name: "silero: dynamic int8 on speech", model: onnxtest.SileroVAD,
			spec: speech + "  evaluation: {latencyRuns: 3}\n  stages:\n  - {name: int8, type: Quantize, quantize: {method: dynamic}}\n",
			bounds: []bound{
				{"samples", 161, 161}, {"outputs", 2, 2},
				// The target: cosine >= 0.99. The speech
				// probability has one value per frame, so only the state
				// has a cosine; the probability's relative error is the
				// figure that means something (about 0.066 measured).
				{"cosine[stateN]", 0.99, 1},
				{"relativeError", 0.001, 0.1}, {"relativeError[output]", 0.001, 0.1}, {"snrDb[output]", 15, 60},
			},
			absent: []string{"cosine", "top1Agreement", "cosine[output]", "top1Agreement[output]"},
		},
		{
			// The target: fp16 at <= 0.6x the file. Silero keeps
			// its convolutions inside If branches and its LSTM has no
			// float16 CPU kernel: both are stored as float16 and cast
			// back to float32 where read.
			name: "silero: fp16", model: onnxtest.SileroVAD,
			spec:    speech + "  evaluation: {latencyRuns: 3}\n  stages:\n  - {name: fp16, type: Quantize, quantize: {method: fp16}}\n",
			bounds:  []bound{{"samples", 161, 161}, {"relativeError[output]", 0, 0.01}, {"cosine[stateN]", 0.9999, 1}},
			maxSize: 0.6,
		},
		{
			name: "silero: static int8 calibrated on speech", model: onnxtest.SileroVAD,
			spec:   speech + "  evaluation: {latencyRuns: 3}\n  stages:\n  - {name: int8, type: Quantize, quantize: {method: static, calibration: {samples: 64}}}\n",
			bounds: []bound{{"samples", 161, 161}, {"relativeError[output]", 0.001, 0.1}, {"cosine[stateN]", 0.98, 1}},
		},
		{
			name: "silero: synthesized from evaluation.inputs", model: onnxtest.SileroVAD,
			spec:   vadInputs + "  stages:\n  - {name: int8, type: Quantize, quantize: {method: dynamic}}\n",
			bounds: []bound{{"samples", 8, 8}, {"outputs", 2, 2}, {"relativeError[output]", 0.001, 1}, {"cosine[stateN]", 0.9, 1}},
		},
		{
			name: "silero: an input name the model does not have", model: onnxtest.SileroVAD,
			spec: vadInputs + "    - {name: h, shape: [2, 1, 64], value: \"0\"}\n  stages:\n  - {name: int8, type: Quantize, quantize: {method: dynamic}}\n",
			code: pipeline.ExitBadInput, reason: "OutputRejected",
			stderr: `evaluation.inputs names input "h"; the model's inputs are ["input" "state" "sr"]`,
		},
		{
			name: "silero: distillation trains single-input students only", model: onnxtest.SileroVAD,
			spec: speech + "  stages:\n  - {name: kd, type: Distill, distill: {alpha: \"1\"}}\n",
			code: pipeline.ExitBadInput, reason: v1alpha1.ReasonBadInput,
			stderr: `distillation trains students with exactly one input (fed the dataset's x, or the array named by the input, as float32 batches); the student`,
		},
		{
			// Structured pruning runs the model once to learn its tensor
			// shapes: without a dataset, as spec.evaluation.inputs say.
			name: "ppocr-cls: structured pruning probed at evaluation.inputs", model: onnxtest.PPOCRCls,
			spec: "  evaluation:\n    latencyRuns: 2\n    inputs:\n    - {name: x, shape: [3, 48, 192], range: [\"-1\", \"1\"]}\n" +
				"  stages:\n  - {name: slim, type: Prune, prune: {method: structured, sparsity: \"0.25\"}}\n",
			bounds: []bound{{"params", 50000, 133663}, {"samples", 8, 8}, {"cosine", 0.9, 1}, {"top1Agreement", 0, 1}},
		},
		{
			name: "ppocr-cls: structured pruning with an unknown input name", model: onnxtest.PPOCRCls,
			spec: "  evaluation:\n    inputs:\n    - {name: image, shape: [3, 48, 192]}\n" +
				"  stages:\n  - {name: slim, type: Prune, prune: {method: structured, sparsity: \"0.25\"}}\n",
			code: pipeline.ExitBadInput, reason: v1alpha1.ReasonBadInput,
			stderr: `structured pruning: evaluation.inputs names input "image", which is not an input of`,
		},
		{
			// The target: 2:4 pruning of a one-output model
			// reports relativeError, and maxRelativeError "0.01" fails
			// the gate (exit 65 here, QualityGateFailed in a cluster:
			// both through pipeline.Summarize).
			name: "hello-deepa: 2:4 misses maxRelativeError", model: onnxtest.HelloDeepa,
			spec: deepaInputs + "  acceptance: {maxRelativeError: \"0.01\"}\n  stages:\n  - {name: nm, type: Prune, prune: {method: nm, pattern: \"2:4\"}}\n",
			code: pipeline.ExitBadInput, reason: v1alpha1.ReasonQualityGateFailed,
			bounds: []bound{{"relativeError", 0.01, 10}, {"sparsity", 0.49, 0.51}},
			absent: []string{"cosine", "top1Agreement", "outputs"},
			stderr: "maxRelativeError: relativeError",
		},
		{
			// cosine would be 1 by construction on one value per
			// sample: the gate is missed rather than passed.
			name: "hello-deepa: minCosine cannot pass on one value", model: onnxtest.HelloDeepa,
			spec: deepaInputs + "  acceptance: {minCosine: \"0.99\"}\n  stages:\n  - {name: nm, type: Prune, prune: {method: nm, pattern: \"2:4\"}}\n",
			code: pipeline.ExitBadInput, reason: v1alpha1.ReasonQualityGateFailed,
			stderr: "minCosine: metric cosine was not measured (an output of one value per sample has no cosine: gate it with maxRelativeError or minSnrDb)",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jobFile, out := modelJob(t, tc.model, tc.spec)
			stdout, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d; stderr should contain %q:\n%s", code, tc.code, tc.stderr, stderr)
			}
			job := decodeJob(t, stdout)
			ready := meta.FindStatusCondition(job.Status.Conditions, v1alpha1.ConditionReady)
			wantReason := tc.reason
			if wantReason == "" {
				wantReason = v1alpha1.ReasonSucceeded
			}
			if ready == nil || ready.Reason != wantReason {
				t.Fatalf("Ready %+v, want reason %s", ready, wantReason)
			}
			if tc.code != 0 && tc.reason != v1alpha1.ReasonQualityGateFailed {
				if models, _ := filepath.Glob(filepath.Join(out, "*", "model.onnx")); len(models) > 0 {
					t.Errorf("a failed stage published %v", models)
				}
				return
			}
			last := job.Status.Stages[len(job.Status.Stages)-1].Output
			if last == nil {
				t.Fatalf("no output: %+v", job.Status)
			}
			for _, b := range tc.bounds {
				if v := metric(t, last.Metrics, b.metric); v < b.min || v > b.max {
					t.Errorf("%s = %v, want it in [%v, %v]", b.metric, v, b.min, b.max)
				}
			}
			for _, name := range tc.absent {
				if v, ok := last.Metrics[name]; ok {
					t.Errorf("%s = %s is reported, want it absent", name, v)
				}
			}
			if size := metric(t, last.Metrics, pipeline.MetricBytes) / metric(t, last.Metrics, pipeline.MetricSourceBytes); tc.maxSize > 0 && size > tc.maxSize {
				t.Errorf("the output is %.3fx the source's bytes, want <= %.2fx", size, tc.maxSize)
			}
			t.Logf("%s: bytes %s of %s, metrics %v", tc.name, last.Metrics["bytes"], last.Metrics["sourceBytes"], last.Metrics)
		})
	}
}

// The recognizer's [N, T, C] output is compared position by position:
// top1Agreement is the share of the T positions of every text line whose
// class is the source's, counted here independently of the evaluator on
// the published model (one argmax over T x C values, as before, would say
// almost nothing about a line).
func TestRecognizerTop1PerPosition(t *testing.T) {
	orttest.Require(t)
	jobFile, _ := modelJob(t, onnxtest.PPOCRRec, "  dataset: {uri: "+testdataURI("ppocr-rec/lines.npz")+"}\n"+
		"  evaluation: {latencyRuns: 2}\n  stages:\n  - {name: prune, type: Prune, prune: {method: magnitude, sparsity: \"0.5\"}}\n")
	stdout, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	job := decodeJob(t, stdout)
	got := metric(t, job.Status.Output.Metrics, pipeline.MetricTop1Agreement)

	lines, err := dataset.LoadFile(onnxtest.ModelPath("ppocr-rec/lines.npz"))
	if err != nil {
		t.Fatal(err)
	}
	pruned, _, err := storage.ReadAll(context.Background(), job.Status.Output.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Load(pruned)
	if err != nil {
		t.Fatal(err)
	}
	outs := func(m *onnx.Model) ([]float32, []int64) {
		d, err := feed.FromDataset(feed.Inputs(m), lines)
		if err != nil {
			t.Fatal(err)
		}
		in, err := d.Tensors([]int{0, 1, 2, 3, 4, 5, 6, 7})
		if err != nil {
			t.Fatal(err)
		}
		res := orttest.Run(t, m, in)
		y := res[m.Proto.GetGraph().GetOutput()[0].GetName()]
		v, err := y.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		return v, y.Dims
	}
	ref, dims := outs(onnxtest.Model(t, onnxtest.PPOCRRec))
	pr, _ := outs(m)
	if d := cmp.Diff([]int64{8, 40, 6625}, dims); d != "" {
		t.Fatalf("recognizer output dims (-want +got):\n%s", d)
	}
	agree, positions := compare.Top1(pr, ref, 6625)
	want := float64(agree) / float64(positions)
	if positions != 8*40 || metricDecimal(want) != job.Status.Output.Metrics[pipeline.MetricTop1Agreement] {
		t.Errorf("top1Agreement = %v; %d of %d positions agree (%v)", got, agree, positions, want)
	}
	// The target is >= 0.9 at 50%; magnitude pruning reaches
	// 0.63 on these lines (hessian pruning 0.93,
	// TestRecognizerHessian50): a figure of the pruning method, reported
	// as measured.
	t.Logf("ppocr-rec magnitude 50%%: per-position top-1 agreement %v (%d/%d positions), cosine %s, relativeError %s",
		got, agree, positions, job.Status.Output.Metrics["cosine"], job.Status.Output.Metrics["relativeError"])
}

// The target for the recognizer, >= 0.9 per-position top-1
// agreement at 50% sparsity, is reached by hessian pruning (SparseGPT:
// weights removed by w²/[H⁻¹]ᵢᵢ, the others updated to compensate,
// calibrated on the dataset's lines), as config/samples/ppocr-rec-prune.yaml
// does it. Magnitude pruning at 50% collapses this recognizer to 0.63
// whichever layers it leaves dense short of every convolution (the first
// and last layers, the depthwise kernels, the squeeze-excitation or neck
// convolutions, global or per-layer scope all measured 0.631), and
// distillation does not train its operators (ReduceMean, Pow, Sqrt,
// Slice).
func TestRecognizerHessian50(t *testing.T) {
	orttest.Require(t)
	onnxtest.Figures(t, "hessian pruning of a 10.8 MB recognizer: about 80 s on 2 cores")
	jobFile, _ := modelJob(t, onnxtest.PPOCRRec, "  dataset: {uri: "+testdataURI("ppocr-rec/lines.npz")+"}\n"+
		"  evaluation: {latencyRuns: 2}\n  acceptance: {minTop1Agreement: \"0.9\"}\n"+
		"  stages:\n  - {name: prune, type: Prune, prune: {method: hessian, sparsity: \"0.5\"}}\n")
	stdout, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	m := decodeJob(t, stdout).Status.Output.Metrics
	agreement, sparsity := metric(t, m, pipeline.MetricTop1Agreement), metric(t, m, pipeline.MetricSparsity)
	t.Logf("ppocr-rec hessian 50%%: per-position top-1 agreement %v, sparsity %v, cosine %s", agreement, sparsity, m["cosine"])
	if agreement < 0.9 || sparsity < 0.49 {
		t.Errorf("top-1 agreement %v at sparsity %v, want >= 0.9 at 0.5", agreement, sparsity)
	}
}

// metricDecimal rounds as the runner's metrics do (6 decimals).
func metricDecimal(v float64) string {
	return strconv.FormatFloat(float64(int64(v*1e6+0.5))/1e6, 'f', -1, 64)
}

// A dataset that does not fit the model (an input's array missing, an
// array for no input, the wrong element type or shape) fails the stage
// with one error naming the input and what it takes; nothing is
// published.
func TestRealModelBadDatasets(t *testing.T) {
	orttest.Require(t)
	good, err := dataset.LoadFile(onnxtest.ModelPath("silero-vad/speech.npz"))
	if err != nil {
		t.Fatal(err)
	}
	arrays := func(edit func(map[string]dataset.Array)) []dataset.Array {
		m := map[string]dataset.Array{}
		for _, a := range good.Arrays {
			m[a.Name] = a
		}
		edit(m)
		var out []dataset.Array
		for _, name := range []string{"input", "state", "sr", "h"} {
			if a, ok := m[name]; ok {
				out = append(out, a)
			}
		}
		return out
	}
	tests := []struct {
		name   string
		arrays []dataset.Array
		want   string
	}{
		{"missing the state", arrays(func(m map[string]dataset.Array) { delete(m, "state") }),
			`no array "state" for model input "state", which takes FLOAT [2 ? 128]; the file has [input sr]`},
		{"an array for no input", arrays(func(m map[string]dataset.Array) {
			m["h"] = dataset.Array{Name: "h", Shape: []int{2, 1, 64}, Data: make([]float32, 128)}
		}), `array "h" feeds no input of the model, whose inputs are "input" (FLOAT [? ?]), "state" (FLOAT [2 ? 128]), "sr" (an INT64 scalar)`},
		{"the sample rate as a float", arrays(func(m map[string]dataset.Array) {
			m["sr"] = dataset.Array{Name: "sr", Shape: []int{}, Data: []float32{16000}}
		}), `sr is FLOAT; model input "sr" takes an INT64 scalar, which it is not converted to`},
		{"a state of the wrong shape", arrays(func(m map[string]dataset.Array) {
			m["state"] = dataset.Array{Name: "state", Shape: []int{2, 1, 64}, Data: make([]float32, 128)}
		}), `state has shape [2 1 64]; model input "state" takes FLOAT [2 ? 128], fed whole with every batch`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "bad.npz")
			if err := dataset.WriteNPZFile(data, tc.arrays...); err != nil {
				t.Fatal(err)
			}
			jobFile, out := modelJob(t, onnxtest.SileroVAD, "  dataset: {uri: "+storage.FileURI(data)+"}\n"+
				"  stages:\n  - {name: int8, type: Quantize, quantize: {method: static}}\n")
			stdout, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
			if code != pipeline.ExitBadInput || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, want %d; stderr should contain %q:\n%s", code, pipeline.ExitBadInput, tc.want, stderr)
			}
			job := decodeJob(t, stdout)
			stalled := meta.FindStatusCondition(job.Status.Conditions, v1alpha1.ConditionStalled)
			if stalled == nil || stalled.Status != metav1.ConditionTrue || stalled.Reason != v1alpha1.ReasonBadInput || job.Status.Output != nil {
				t.Errorf("Stalled %+v, output %+v: want Stalled=True BadInput and no output", stalled, job.Status.Output)
			}
			if files, _ := filepath.Glob(filepath.Join(out, "*", "*")); len(files) > 0 {
				t.Errorf("a rejected dataset published %v", files)
			}
		})
	}
}

// Hessian statistics on a model with three inputs (samples, a gain
// scalar and a state [2, N, 8] fed whole, as Silero VAD's): the
// calibration batches keep the scalar and the state whole while they
// count and cut the samples. (Silero VAD itself keeps every weight
// inside If branches, which hessian pruning refuses by name.)
func TestHessianOnAMultiInputModel(t *testing.T) {
	orttest.Require(t)
	dir := t.TempDir()
	b := onnxtest.NewBuilder(3)
	b.Name = "three-inputs"
	audio, gain, state := b.Input("audio", "N", 16), b.Input("gain"), b.Input("state", 2, "N", 8)
	h := b.Node("MatMul", "h", []string{audio, b.Init("w1", onnx.NewTensor([]int64{16, 8}, b.Uniform(128)))})
	h = b.Node("Mul", "scaled", []string{h, gain})
	s := b.Node("ReduceMean", "s", []string{state}, onnx.AttrInts("axes", 0), onnx.AttrInt("keepdims", 0))
	y := b.Node("Relu", "r", []string{b.Node("Add", "y", []string{h, s})})
	out := b.Node("MatMul", "out", []string{y, b.Init("w2", onnx.NewTensor([]int64{8, 4}, b.Uniform(32)))})
	m := b.Model(13, out)
	m.Proto.Graph.Input[1] = onnx.ValueInfo("gain", onnx.Float, []onnx.Dim{})
	raw, err := m.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	model, data := filepath.Join(dir, "model.onnx"), filepath.Join(dir, "data.npz")
	if err := os.WriteFile(model, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := dataset.WriteNPZFile(data,
		dataset.Array{Name: "audio", Shape: []int{64, 16}, Data: b.Uniform(64 * 16)},
		dataset.Array{Name: "gain", Shape: []int{}, Data: []float32{0.5}},
		dataset.Array{Name: "state", Shape: []int{2, 1, 8}, Data: b.Uniform(16)},
	); err != nil {
		t.Fatal(err)
	}
	job := fmt.Sprintf(`apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: hessian-three-inputs}
spec:
  source: {uri: %s}
  output: {uri: %s}
  dataset: {uri: %s}
  evaluation: {latencyRuns: 2}
  stages:
  - {name: obs, type: Prune, prune: {method: hessian, pattern: "2:4", calibrationSamples: 48}}
`, storage.FileURI(model), storage.FileURI(filepath.Join(dir, "out")), storage.FileURI(data))
	jobFile := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(jobFile, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := cli(t, "run", "-f", jobFile, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	metrics := decodeJob(t, stdout).Status.Output.Metrics
	if sparsity := metric(t, metrics, "sparsity"); sparsity != 0.5 {
		t.Errorf("sparsity %v, want 0.5 (2:4 on both MatMul weights)", sparsity)
	}
	if samples := metric(t, metrics, "samples"); samples != 64 {
		t.Errorf("%v samples scored, want 64", samples)
	}
	t.Logf("hessian 2:4 on a three-input model: metrics %v", metrics)
}
