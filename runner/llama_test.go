package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/hack/modelgen"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/compare"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/feed"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/ort/orttest"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// llamaStages are the weight methods run on a LLaMA-style decoder, with
// the least logits cosine each keeps on held-out tokens: measured on
// SmallLlama less a margin (rtn 0.981, gptq 0.988, dynamic 0.990,
// static 0.982, with SmoothQuant 0.992, SparseGPT 0.968 at 50% and 0.926
// at 2:4, magnitude 0.882). SparseGPT's bound fails if its weight update
// breaks (magnitude's choice without it gives 0.88); a cache ignored
// gives 0.72.
func llamaStages() []struct {
	stage     v1alpha1.Stage
	minCosine float64
} {
	// The default guard: the 4-bit layers that cost the most fidelity
	// are kept at 8 bits.
	gptq := int4Stage()
	gptq.Name, gptq.Quantize.Algorithm, gptq.Quantize.SensitiveLayers = "gptq", v1alpha1.AlgorithmGPTQ, v1alpha1.SensitiveInt8
	rtn := int4Stage()
	rtn.Name, rtn.Quantize.Algorithm, rtn.Quantize.SensitiveLayers = "rtn", v1alpha1.AlgorithmRTN, v1alpha1.SensitiveInt8
	dynamic := quantizeStageSpec(v1alpha1.QuantizeDynamic)
	dynamic.Name = "dynamic"
	static := quantizeStageSpec(v1alpha1.QuantizeStatic)
	static.Name = "static"
	smooth := quantizeStageSpec(v1alpha1.QuantizeStatic)
	smooth.Name, smooth.Quantize.SmoothQuant = "static-smoothquant", &v1alpha1.SmoothQuant{Alpha: "0.5"}
	prune := func(name string, p v1alpha1.PruneSpec) v1alpha1.Stage {
		return v1alpha1.Stage{Name: name, StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &p}}
	}
	return []struct {
		stage     v1alpha1.Stage
		minCosine float64
	}{
		{rtn, 0.96},
		{gptq, 0.975},
		{dynamic, 0.98},
		{static, 0.97},
		{smooth, 0.98},
		{prune("sparsegpt-50", v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Sparsity: "0.5", CalibrationSamples: 16}), 0.95},
		{prune("sparsegpt-2-4", v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Pattern: "2:4", CalibrationSamples: 16}), 0.9},
		{prune("magnitude-50", v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}), 0.85},
	}
}

// Every weight method runs on a decoder exported as Hugging Face's
// with-past exports are (position_ids, past_key_values.N.key/.value in,
// logits and present.N.key/.value out; RMSNorm, rotary positions,
// grouped-query attention, SwiGLU, a head tied to the embedding), from a
// dataset of what a tokenizer gives (input_ids, attention_mask). Each
// published model takes and returns what the source does, keeps its
// logits close to the source's on held-out tokens, and its cache still
// works: 24 tokens in one call give the logits of 16 tokens then 8 with
// the first call's present as the past. Hessian pruning and GPTQ run
// block by block, not on the whole model.
func TestLlamaEveryMethod(t *testing.T) {
	orttest.Require(t)
	dir := t.TempDir()
	cfg := modelgen.SmallLlama
	src := modelgen.Llama(cfg)
	raw, err := src.Bytes()
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "model.onnx"), raw, 0o644)
	}
	if err == nil {
		err = dataset.WriteNPZFile(filepath.Join(dir, "tokens.npz"), modelgen.LlamaTokens(cfg, 16, 32, 2)...)
	}
	if err != nil {
		t.Fatal(err)
	}
	held := modelgen.LlamaTokens(cfg, 4, 24, 3)[0].Data.([]int64)
	for _, tc := range llamaStages() {
		t.Run(tc.stage.Name, func(t *testing.T) {
			ctx := context.Background()
			spec := &v1alpha1.CompressionJobSpec{
				Source:     v1alpha1.ModelSource{URI: storage.FileURI(filepath.Join(dir, "model.onnx"))},
				Output:     v1alpha1.OutputSpec{URI: storage.FileURI(filepath.Join(dir, tc.stage.Name))},
				Dataset:    &v1alpha1.DatasetSpec{URI: storage.FileURI(filepath.Join(dir, "tokens.npz")), Format: v1alpha1.DatasetFormatNPZ},
				Evaluation: v1alpha1.EvaluationSpec{Samples: 8, LatencyBatchSize: 1, LatencyRuns: 2},
				Stages:     []v1alpha1.Stage{tc.stage},
			}
			task := firstTask(t, spec)
			res, err := Execute(ctx, task, Options{})
			if err != nil {
				t.Fatalf("Execute: %v (%s)", err, res.Message)
			}
			b, _, err := storage.ReadAll(ctx, res.Output.URI, res.Output.Digest)
			if err != nil {
				t.Fatal(err)
			}
			out, err := onnx.Load(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(signature(src), signature(out)); diff != "" {
				t.Errorf("inputs and outputs (-source +published):\n%s", diff)
			}
			var c float64
			for s := range 4 {
				ids := held[s*24 : (s+1)*24]
				want := llamaRun(t, src, cfg, ids, 0, nil)
				got := llamaRun(t, out, cfg, ids, 0, nil)
				c += compare.Cosine(floatsOf(t, want[modelgen.Logits]), floatsOf(t, got[modelgen.Logits])) / 4
				if s == 0 {
					checkCache(t, out, cfg, ids, got)
				}
			}
			t.Logf("logits cosine %.4f on held-out tokens; warnings %q", c, res.Warnings)
			if c < tc.minCosine || math.IsNaN(c) {
				t.Errorf("logits cosine %.4f on held-out tokens, want >= %.2f", c, tc.minCosine)
			}
			if w := strings.Join(res.Warnings, "\n"); strings.Contains(w, "not block by block") {
				t.Errorf("gptq ran on the whole model: %s", w)
			}
			if tc.stage.Type == v1alpha1.StageTypePrune && tc.stage.Prune.Method == v1alpha1.PruneHessian {
				var d struct {
					Stage struct {
						Hessian struct {
							Blocks     int    `json:"blocks"`
							WholeModel string `json:"wholeModel"`
						} `json:"hessian"`
					} `json:"stage"`
				}
				if err := json.Unmarshal(res.Details, &d); err != nil {
					t.Fatal(err)
				}
				if h := d.Stage.Hessian; h.Blocks < 2*cfg.Layers {
					t.Errorf("pruned in %d blocks (%q), want at least 2 per decoder block", h.Blocks, h.WholeModel)
				}
			}
		})
	}
}

// signature lists a model's inputs and outputs with their types.
func signature(m *onnx.Model) []string {
	var s []string
	g := m.Proto.GetGraph()
	for _, vi := range slices.Concat(g.GetInput(), g.GetOutput()) {
		s = append(s, vi.GetName()+" "+vi.GetType().String())
	}
	return s
}

// llamaRun runs one step of m (modelgen.LlamaStep's inputs).
func llamaRun(t *testing.T, m *onnx.Model, cfg modelgen.LlamaConfig, ids []int64, start int, past map[string]*onnx.Tensor) map[string]*onnx.Tensor {
	t.Helper()
	s, err := feed.Open(m, feed.Options{Threads: 1})
	if err != nil {
		t.Fatalf("ONNX Runtime does not load the model: %v", err)
	}
	defer s.Close()
	out, err := s.Run(modelgen.LlamaStep(cfg, ids, start, past))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkCache checks that the logits of the last 8 tokens, in whole (one
// call on every token), are what m gives on the first 16 then the last 8
// with the present of the first call as the past: to a cosine of 0.99,
// as dynamic quantization scales each call's activations by their own
// range (a cache ignored, or positions restarting at 0, give 0.72 and
// 0.82 on the float model).
func checkCache(t *testing.T, m *onnx.Model, cfg modelgen.LlamaConfig, ids []int64, whole map[string]*onnx.Tensor) {
	t.Helper()
	first := llamaRun(t, m, cfg, ids[:16], 0, nil)
	second := floatsOf(t, llamaRun(t, m, cfg, ids[16:], 16, first)[modelgen.Logits])
	all := floatsOf(t, whole[modelgen.Logits])
	tail := all[len(all)-len(second):]
	if c := compare.Cosine(tail, second); c < 0.99 {
		t.Errorf("the logits of the last 8 tokens with the cache have cosine %.5f to those of one call, want >= 0.99", c)
	}
}

func floatsOf(t *testing.T, v *onnx.Tensor) []float32 {
	t.Helper()
	f, err := v.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// llamaLayerTask is stage on SmallLlama (pinned source and dataset of
// tokenizer arrays) with its blocks dealt to layers workers, its output
// under out.
func llamaLayerTask(t *testing.T, stage v1alpha1.Stage, layers int32, out string) pipeline.Task {
	t.Helper()
	dir := t.TempDir()
	raw, err := modelgen.Llama(modelgen.SmallLlama).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var npz bytes.Buffer
	if err := dataset.WriteNPZ(&npz, modelgen.LlamaTokens(modelgen.SmallLlama, 16, 32, 2)...); err != nil {
		t.Fatal(err)
	}
	return pinnedLayerTask(t, dir, raw, npz.Bytes(), stage, &v1alpha1.ParallelismSpec{Layers: layers, LayerInputs: v1alpha1.LayerInputsOriginal}, out)
}

// The blocks of a with-past decoder (its present keys and values
// returned by the block that makes them) run as layer pods too: GPTQ
// and SparseGPT on 2 indices publish what one worker does.
func TestLlamaLayerPods(t *testing.T) {
	orttest.Require(t)
	s3 := storagetest.StartS3(t, "out")
	for _, tc := range llamaStages() {
		if tc.stage.Name != "gptq" && tc.stage.Name != "sparsegpt-50" {
			continue
		}
		t.Run(tc.stage.Name, func(t *testing.T) {
			want, err := Execute(context.Background(), llamaLayerTask(t, tc.stage, 1, ""), Options{})
			if err != nil {
				t.Fatalf("layers 1: %v", err)
			}
			matchOneWorker(t, s3, llamaLayerTask(t, tc.stage, 2, s3.URI("out", "llama-"+tc.stage.Name)), 2, want)
		})
	}
}
