package v1alpha1_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/test/controlplane"
)

var (
	apiOnce   sync.Once
	apiCP     *controlplane.ControlPlane
	apiClient client.Client
	apiErr    error
)

// apiServer starts kube-apiserver and etcd with the CRD, once.
func apiServer(t *testing.T) client.Client {
	t.Helper()
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd (KUBEBUILDER_ASSETS); skipped with -short")
	}
	apiOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		crds := filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases")
		apiCP, apiErr = controlplane.Start(controlplane.Options{CRDDirectoryPaths: []string{crds}})
		if apiErr != nil {
			return
		}
		s := k8sruntime.NewScheme()
		if apiErr = v1alpha1.AddToScheme(s); apiErr != nil {
			return
		}
		apiClient, apiErr = client.New(apiCP.Config, client.Options{Scheme: s})
	})
	if apiErr != nil {
		t.Fatal(apiErr)
	}
	return apiClient
}

func TestMain(m *testing.M) {
	code := m.Run()
	if apiCP != nil {
		if err := apiCP.Stop(); err != nil {
			code = 1
		}
	}
	os.Exit(code)
}

func valid(name string) *v1alpha1.CompressionJob {
	return &v1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: v1alpha1.CompressionJobSpec{
			Source:  v1alpha1.ModelSource{URI: "s3://models/mnist.onnx"},
			Output:  v1alpha1.OutputSpec{URI: "s3://models/compressed"},
			Dataset: &v1alpha1.DatasetSpec{URI: "s3://data/mnist.npz"},
			Stages: []v1alpha1.Stage{
				{Name: "prune", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5"}}},
				{Name: "recover", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeDistill, Distill: &v1alpha1.DistillSpec{}}},
				{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic}}},
			},
		},
	}
}

func param(stage, field string, values ...string) v1alpha1.VariantParameter {
	return v1alpha1.VariantParameter{Stage: stage, Field: field, Values: values}
}

func sweep(params ...v1alpha1.VariantParameter) *v1alpha1.VariantsSpec {
	return &v1alpha1.VariantsSpec{Parameters: params}
}

func prune(c *v1alpha1.CompressionJob) *v1alpha1.PruneSpec       { return c.Spec.Stages[0].Prune }
func distill(c *v1alpha1.CompressionJob) *v1alpha1.DistillSpec   { return c.Spec.Stages[1].Distill }
func quantize(c *v1alpha1.CompressionJob) *v1alpha1.QuantizeSpec { return c.Spec.Stages[2].Quantize }

// TestInvalidSpecsAreRejected creates specs that break each validation rule
// and checks that the API server names the field and says what is expected.
func TestInvalidSpecsAreRejected(t *testing.T) {
	c := apiServer(t)
	cases := []struct {
		name   string
		mutate func(*v1alpha1.CompressionJob)
		field  string
		msg    string
	}{
		{"output equals source", func(c *v1alpha1.CompressionJob) { c.Spec.Output.URI = c.Spec.Source.URI },
			"spec", "spec.output.uri must differ from spec.source.uri"},
		{"source scheme", func(c *v1alpha1.CompressionJob) { c.Spec.Source.URI = "https://example.com/m.onnx" },
			"spec.source.uri", "spec.source.uri must be a URI with scheme s3, gs, azblob, file or mem"},
		{"source digest", func(c *v1alpha1.CompressionJob) { c.Spec.Source.SHA256 = "sha256:ABC" },
			"spec.source.sha256", "spec.source.sha256 must be 64 lowercase hex digits"},
		{"output scheme", func(c *v1alpha1.CompressionJob) { c.Spec.Output.URI = "/tmp/out" },
			"spec.output.uri", "spec.output.uri must be a URI with scheme s3, gs, azblob, file or mem"},
		{"dataset scheme", func(c *v1alpha1.CompressionJob) { c.Spec.Dataset.URI = "ftp://data/x.npz" },
			"spec.dataset.uri", "dataset uri must be a URI with scheme"},
		{"dataset digest", func(c *v1alpha1.CompressionJob) { c.Spec.Dataset.SHA256 = strings.Repeat("g", 64) },
			"spec.dataset.sha256", "dataset sha256 must be 64 lowercase hex digits"},
		{"distill dataset scheme", func(c *v1alpha1.CompressionJob) { distill(c).Dataset = &v1alpha1.DatasetSpec{URI: "data.npz"} },
			"spec.stages[1].distill.dataset.uri", "dataset uri must be a URI with scheme"},
		{"max accuracy drop of 1", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "1"}
		}, "spec.acceptance.maxAccuracyDrop", "spec.acceptance.maxAccuracyDrop must be a decimal string in [0, 1)"},
		{"min top-1 agreement a percentage", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MinTop1Agreement: "99"}
		}, "spec.acceptance.minTop1Agreement", "spec.acceptance.minTop1Agreement must be a decimal string in [0, 1]"},
		{"min cosine not a number", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MinCosine: "high"}
		}, "spec.acceptance.minCosine", "spec.acceptance.minCosine must be a decimal string in [0, 1]"},
		{"max relative error negative", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxRelativeError: "-0.01"}
		}, "spec.acceptance.maxRelativeError", "spec.acceptance.maxRelativeError must be a non-negative decimal string"},
		{"min SNR with a unit", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MinSnrDb: "30dB"}
		}, "spec.acceptance.minSnrDb", "spec.acceptance.minSnrDb must be a decimal string in decibels"},
		{"input with a value and a range", func(c *v1alpha1.CompressionJob) {
			c.Spec.Evaluation.Inputs = []v1alpha1.EvaluationInput{{Name: "x", Value: "1", Range: []string{"0", "1"}}}
		}, "spec.evaluation.inputs[0]", "set value (a constant) or range (random values), not both"},
		{"input value not a number", func(c *v1alpha1.CompressionJob) {
			c.Spec.Evaluation.Inputs = []v1alpha1.EvaluationInput{{Name: "sr", Value: "16k"}}
		}, "spec.evaluation.inputs[0].value", "spec.evaluation.inputs[].value must be a decimal string"},
		{"input range upside down", func(c *v1alpha1.CompressionJob) {
			c.Spec.Evaluation.Inputs = []v1alpha1.EvaluationInput{{Name: "x", Range: []string{"1", "-1"}}}
		}, "spec.evaluation.inputs[0].range", "spec.evaluation.inputs[].range must be two decimal strings [low, high) with low < high"},
		{"input range not numbers", func(c *v1alpha1.CompressionJob) {
			c.Spec.Evaluation.Inputs = []v1alpha1.EvaluationInput{{Name: "x", Range: []string{"low", "1"}}}
		}, "spec.evaluation.inputs[0].range", "spec.evaluation.inputs[].range must be two decimal strings [low, high) with low < high"},
		{"max latency of zero", func(c *v1alpha1.CompressionJob) {
			c.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxLatency: &metav1.Duration{}}
		}, "spec.acceptance.maxLatency", "spec.acceptance.maxLatency must be a positive duration"},
		// A rule on the root cannot point fieldPath at metadata: the
		// message names the field instead.
		{"name too long", func(c *v1alpha1.CompressionJob) { c.Name = strings.Repeat("n", 64) },
			"<nil>", "metadata.name must be at most 63 characters"},
		{"body does not match type", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[0].Type = v1alpha1.StageTypeQuantize
		}, "spec.stages[0]", "a stage must set exactly one of prune, distill, quantize or custom: the one matching its type"},
		{"two bodies", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[2].Prune = &v1alpha1.PruneSpec{Method: v1alpha1.PruneNM}
		}, "spec.stages[2]", "a stage must set exactly one of prune, distill, quantize or custom"},
		{"stage name not a DNS label", func(c *v1alpha1.CompressionJob) { c.Spec.Stages[0].Name = "Prune_1" },
			"spec.stages[0].name", "stage name must be a DNS label"},
		{"duplicate stage names", func(c *v1alpha1.CompressionJob) { c.Spec.Stages[2].Name = "prune" },
			"spec.stages[2]", "Duplicate value"},
		{"no stages", func(c *v1alpha1.CompressionJob) { c.Spec.Stages = []v1alpha1.Stage{} },
			"spec.stages", "should have at least 1 items"},
		{"sparsity and pattern", func(c *v1alpha1.CompressionJob) { prune(c).Pattern = "2:4" },
			"spec.stages[0].prune", "prune: set sparsity or pattern, not both"},
		{"pattern with magnitude", func(c *v1alpha1.CompressionJob) { prune(c).Sparsity, prune(c).Pattern = "", "2:4" },
			"spec.stages[0].prune", "prune.pattern is only used by methods nm and hessian"},
		{"global scope with hessian", func(c *v1alpha1.CompressionJob) {
			prune(c).Method, prune(c).Scope = v1alpha1.PruneHessian, v1alpha1.ScopeGlobal
		},
			"spec.stages[0].prune", "prune.scope global applies to methods magnitude, structured and entropy"},
		{"sensitivity scope with magnitude", func(c *v1alpha1.CompressionJob) { prune(c).Scope = v1alpha1.ScopeSensitivity },
			"spec.stages[0].prune", "prune.scope sensitivity applies to methods structured and entropy"},
		{"magnitude without sparsity", func(c *v1alpha1.CompressionJob) { prune(c).Sparsity = "" },
			"spec.stages[0].prune", "prune.sparsity is required for methods magnitude"},
		{"keep and sparsity", func(c *v1alpha1.CompressionJob) { prune(c).Keep = "0.5" },
			"spec.stages[0].prune", "prune: set keep or sparsity (or pattern), not more than one"},
		{"keep of 0", func(c *v1alpha1.CompressionJob) { prune(c).Sparsity, prune(c).Keep = "", "0" },
			"spec.stages[0].prune.keep", "prune.keep must be a decimal string in (0, 1)"},
		{"sparsity of 1", func(c *v1alpha1.CompressionJob) { prune(c).Sparsity = "1.0" },
			"spec.stages[0].prune.sparsity", "prune.sparsity must be a decimal string in (0, 1)"},
		{"sparsity with a percent sign", func(c *v1alpha1.CompressionJob) { prune(c).Sparsity = "50%" },
			"spec.stages[0].prune.sparsity", "prune.sparsity must be a decimal string in (0, 1)"},
		{"pattern N not below M", func(c *v1alpha1.CompressionJob) {
			*prune(c) = v1alpha1.PruneSpec{Method: v1alpha1.PruneNM, Pattern: "4:4"}
		}, "spec.stages[0].prune.pattern", "prune.pattern must be N:M with 0 < N < M"},
		{"dampening of 0", func(c *v1alpha1.CompressionJob) { prune(c).Dampening = "0" },
			"spec.stages[0].prune.dampening", "prune.dampening must be a decimal string in (0, 1]"},
		{"teacher scheme", func(c *v1alpha1.CompressionJob) { distill(c).Teacher = &v1alpha1.ModelRef{URI: "teacher.onnx"} },
			"spec.stages[1].distill.teacher.uri", "model uri must be a URI with scheme"},
		{"temperature of 0", func(c *v1alpha1.CompressionJob) { distill(c).Temperature = "0" },
			"spec.stages[1].distill.temperature", `distill.temperature must be "auto" or a positive decimal string`},
		{"alpha above 1", func(c *v1alpha1.CompressionJob) { distill(c).Alpha = "1.5" },
			"spec.stages[1].distill.alpha", "distill.alpha must be a decimal string in [0, 1]"},
		{"learning rate of 10", func(c *v1alpha1.CompressionJob) { distill(c).LearningRate = "10" },
			"spec.stages[1].distill.learningRate", "distill.learningRate must be a positive decimal string below 10"},
		{"momentum of 1", func(c *v1alpha1.CompressionJob) { distill(c).Momentum = "1" },
			"spec.stages[1].distill.momentum", "distill.momentum must be a decimal string in [0, 1)"},
		{"negative weight decay", func(c *v1alpha1.CompressionJob) { distill(c).WeightDecay = "-0.1" },
			"spec.stages[1].distill.weightDecay", "distill.weightDecay must be a decimal string in [0, 1)"},
		{"4 bits with static", func(c *v1alpha1.CompressionJob) { quantize(c).Bits = 4 },
			"spec.stages[2].quantize", "quantize.bits 4 is only supported with method weightOnly"},
		{"matmulnbits with dynamic", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).Format = v1alpha1.QuantizeDynamic, v1alpha1.FormatMatMulNBits
		}, "spec.stages[2].quantize", "quantize.format matmulnbits is only supported with method weightOnly"},
		{"sensitive layers with static", func(c *v1alpha1.CompressionJob) { quantize(c).SensitiveLayers = v1alpha1.SensitiveFloat },
			"spec.stages[2].quantize", "quantize.sensitiveLayers applies to method weightOnly with bits 4"},
		{"sensitive layers with 8 bits", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).SensitiveLayers = v1alpha1.QuantizeWeightOnly, v1alpha1.SensitiveInt8
		}, "spec.stages[2].quantize", "quantize.sensitiveLayers applies to method weightOnly with bits 4"},
		{"gptq with static", func(c *v1alpha1.CompressionJob) { quantize(c).Algorithm = v1alpha1.AlgorithmGPTQ },
			"spec.stages[2].quantize", "quantize.algorithm gptq is only supported with method weightOnly"},
		{"algorithm awq", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).Algorithm = v1alpha1.QuantizeWeightOnly, "awq"
		}, "spec.stages[2].quantize.algorithm", `Unsupported value: "awq"`},
		{"sensitive layers int2", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).Bits, quantize(c).SensitiveLayers = v1alpha1.QuantizeWeightOnly, 4, "int2"
		}, "spec.stages[2].quantize.sensitiveLayers", `Unsupported value: "int2"`},
		{"6 bits", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).Bits = v1alpha1.QuantizeWeightOnly, 6
		},
			"spec.stages[2].quantize.bits", "quantize.bits must be 4 or 8"},
		{"block size 48", func(c *v1alpha1.CompressionJob) { quantize(c).BlockSize = 48 },
			"spec.stages[2].quantize.blockSize", "quantize.blockSize must be a power of two from 16 to 256"},
		{"SmoothQuant with weightOnly", func(c *v1alpha1.CompressionJob) {
			quantize(c).Method, quantize(c).SmoothQuant = v1alpha1.QuantizeWeightOnly, &v1alpha1.SmoothQuant{}
		}, "spec.stages[2].quantize", "quantize.smoothQuant is only supported with method static"},
		{"SmoothQuant alpha 1.5", func(c *v1alpha1.CompressionJob) { quantize(c).SmoothQuant = &v1alpha1.SmoothQuant{Alpha: "1.5"} },
			"spec.stages[2].quantize.smoothQuant.alpha", "quantize.smoothQuant.alpha must be a decimal string in (0, 1]"},
		{"SmoothQuant alpha Auto", func(c *v1alpha1.CompressionJob) { quantize(c).SmoothQuant = &v1alpha1.SmoothQuant{Alpha: "Auto"} },
			"spec.stages[2].quantize.smoothQuant.alpha", "quantize.smoothQuant.alpha must be a decimal string in (0, 1], such as \"0.5\", or auto or off"},
		{"percentile below 50", func(c *v1alpha1.CompressionJob) { quantize(c).Calibration.Percentile = "10" },
			"spec.stages[2].quantize.calibration.percentile", "calibration.percentile must be a decimal string in [50, 100]"},
		{"unknown calibration method", func(c *v1alpha1.CompressionJob) { quantize(c).Calibration.Method = "kl" },
			"spec.stages[2].quantize.calibration.method", `supported values: "minmax", "percentile", "entropy"`},
		{"custom env sets the task", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[2] = v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
				Image: "registry.example/mine:1", Env: []v1alpha1.CustomEnvVar{{Name: "KOMPRESS_TASK", Value: "{}"}}}}}
		}, "spec.stages[2].custom", "custom.env must not set KOMPRESS_TASK"},
		{"custom command too long", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[2] = v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
				Image: "registry.example/mine:1", Command: []string{strings.Repeat("x", 4097)}}}}
		}, "spec.stages[2].custom.command[0]", "may not be more than 4096 bytes"},
		{"custom args too many", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[2] = v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
				Image: "registry.example/mine:1", Args: make([]string, 257)}}}
		}, "spec.stages[2].custom.args", "must have at most 256 items"},
		{"custom env value too long", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[2] = v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
				Image: "registry.example/mine:1", Env: []v1alpha1.CustomEnvVar{{Name: "A", Value: strings.Repeat("v", 8193)}}}}}
		}, "spec.stages[2].custom.env[0].value", "may not be more than 8192 bytes"},
		{"excluded node name too long", func(c *v1alpha1.CompressionJob) {
			prune(c).Exclude = &v1alpha1.Exclusion{Nodes: []string{strings.Repeat("n", 513)}}
		}, "spec.stages[0].prune.exclude.nodes[0]", "may not be more than 512 bytes"},
		{"excluded op type too long", func(c *v1alpha1.CompressionJob) {
			quantize(c).Exclude = &v1alpha1.Exclusion{OpTypes: []string{strings.Repeat("o", 129)}}
		}, "spec.stages[2].quantize.exclude.opTypes[0]", "may not be more than 128 bytes"},
		{"scheduling node selector value too long", func(c *v1alpha1.CompressionJob) {
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": strings.Repeat("v", 64)}}
		}, "spec.scheduling.nodeSelector", "spec.scheduling.nodeSelector keys must be label keys (at most 317 characters) and values label values (at most 63 characters)"},
		{"scheduling node selector too large", func(c *v1alpha1.CompressionJob) {
			sel := map[string]string{}
			for i := 0; i < 33; i++ {
				sel[fmt.Sprintf("k%d", i)] = "v"
			}
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: sel}
		}, "spec.scheduling.nodeSelector", "must have at most 32 items"},
		{"stage node selector key too long", func(c *v1alpha1.CompressionJob) {
			c.Spec.Stages[0].NodeSelector = map[string]string{strings.Repeat("k", 318): "v"}
		}, "spec.stages[0].nodeSelector", "stage nodeSelector keys must be label keys (at most 317 characters) and values label values (at most 63 characters)"},
		{"variants of an unknown stage", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("prunee", "sparsity", "0.3")) },
			"spec", "spec.variants.parameters[].stage must name a stage of spec.stages"},
		{"variants of a field another type has", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("int8", "sparsity", "0.3")) },
			"spec", "spec.variants.parameters[].field must be a variable field of the body of the stage it names"},
		{"variants of an unknown field", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("prune", "sparsty", "0.3")) },
			"spec.variants.parameters[0].field", "Unsupported value: \"sparsty\""},
		{"variants of a list field", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("prune", "exclude", "x")) },
			"spec.variants.parameters[0].field", "Unsupported value: \"exclude\""},
		{"more than 64 variants", func(c *v1alpha1.CompressionJob) {
			c.Spec.Variants = sweep(param("prune", "sparsity", "0.1", "0.2", "0.3", "0.4", "0.5"),
				param("prune", "dampening", "0.01", "0.02", "0.03", "0.04"), param("int8", "bits", "8", "4", "2", "1"))
		}, "spec.variants", "spec.variants.parameters make more than 64 variants (the cross product of their values)"},
		{"the same field twice", func(c *v1alpha1.CompressionJob) {
			c.Spec.Variants = sweep(param("prune", "sparsity", "0.3"), param("prune", "sparsity", "0.6"))
		}, "spec.variants.parameters[1]", "Duplicate value"},
		{"a value twice", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("prune", "sparsity", "0.3", "0.3")) },
			"spec.variants.parameters[0].values[1]", "Duplicate value"},
		{"no values", func(c *v1alpha1.CompressionJob) { c.Spec.Variants = sweep(param("prune", "sparsity", []string{}...)) },
			"spec.variants.parameters[0].values", "should have at least 1 items"},
		{"seven parameters", func(c *v1alpha1.CompressionJob) {
			c.Spec.Variants = sweep(param("prune", "sparsity", "0.3"), param("prune", "seed", "1"), param("prune", "dampening", "0.1"),
				param("prune", "minParams", "1"), param("int8", "bits", "8"), param("int8", "blockSize", "32"), param("int8", "symmetric", "true"))
		}, "spec.variants.parameters", "must have at most 6 items"},
		{"unknown select", func(c *v1alpha1.CompressionJob) {
			c.Spec.Variants = sweep(param("prune", "sparsity", "0.3"))
			c.Spec.Variants.Select = "cheapest"
		}, "spec.variants.select", `supported values: "smallest", "fastest", "mostAccurate"`},
		{"maxParallel of 0", func(c *v1alpha1.CompressionJob) {
			c.Spec.Variants = sweep(param("prune", "sparsity", "0.3"))
			c.Spec.Variants.MaxParallel = -1
		}, "spec.variants.maxParallel", "should be greater than or equal to 1"},
		{"three shards", func(c *v1alpha1.CompressionJob) { c.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 3} },
			"spec.parallelism.shards", "spec.parallelism.shards must be a power of two from 1 to 16 (1, 2, 4, 8 or 16)"},
		{"32 shards", func(c *v1alpha1.CompressionJob) { c.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 32} },
			"spec.parallelism.shards", "spec.parallelism.shards must be a power of two from 1 to 16"},
		{"shards without a dataset", func(c *v1alpha1.CompressionJob) {
			c.Spec.Dataset = nil
			c.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 2}
		}, "spec", "spec.parallelism.shards above 1 needs spec.dataset: the shards are cut from the dataset"},
		{"layer workers with compressed layer inputs", func(c *v1alpha1.CompressionJob) {
			c.Spec.Parallelism = &v1alpha1.ParallelismSpec{Layers: 2}
		}, "spec.parallelism", "spec.parallelism.layers above 1 needs spec.parallelism.layerInputs: Original: blocks are independent only when each is calibrated on the original model's block inputs"},
		{"65 layer workers", func(c *v1alpha1.CompressionJob) {
			c.Spec.Parallelism = &v1alpha1.ParallelismSpec{Layers: 65, LayerInputs: v1alpha1.LayerInputsOriginal}
		}, "spec.parallelism.layers", "should be less than or equal to 64"},
		{"unknown layer inputs", func(c *v1alpha1.CompressionJob) {
			c.Spec.Parallelism = &v1alpha1.ParallelismSpec{LayerInputs: "Float"}
		}, "spec.parallelism.layerInputs", `supported values: "Compressed", "Original"`},
		{"run deadline of 0", func(c *v1alpha1.CompressionJob) { c.Spec.ActiveDeadlineSeconds = ptr.To[int64](0) },
			"spec.activeDeadlineSeconds", "should be greater than or equal to 1"},
		{"stage deadline negative", func(c *v1alpha1.CompressionJob) { c.Spec.Stages[1].ActiveDeadlineSeconds = ptr.To[int64](-5) },
			"spec.stages[1].activeDeadlineSeconds", "should be greater than or equal to 1"},
	}
	// Every CEL rule in the CRD must have a case here.
	for _, rule := range celMessages(t) {
		covered := false
		for _, tc := range cases {
			covered = covered || strings.Contains(rule, tc.msg)
		}
		if !covered {
			t.Errorf("no case covers the CEL rule with message %q", rule)
		}
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpj := valid("invalid-" + strings.ReplaceAll(strings.ToLower(tc.name), " ", "-"))
			if len(cpj.Name) > 63 {
				cpj.Name = cpj.Name[:63]
			}
			tc.mutate(cpj)
			err := c.Create(context.Background(), cpj)
			if err == nil {
				t.Fatalf("case %d: the API server accepted the spec, want it rejected at %q with %q", i, tc.field, tc.msg)
			}
			var status *apierrors.StatusError
			if !errors.As(err, &status) || !apierrors.IsInvalid(err) || status.ErrStatus.Details == nil {
				t.Fatalf("want an Invalid status error, got %v", err)
			}
			for _, cause := range status.ErrStatus.Details.Causes {
				if cause.Field == tc.field && strings.Contains(cause.Message, tc.msg) {
					return
				}
			}
			t.Errorf("no cause at field %q with message %q in: %v", tc.field, tc.msg, err)
		})
	}
}

// TestUndecodableDurationRejected sends maxLatency strings that a typed
// client cannot decode into a metav1.Duration. Were one stored, every
// client's cache of CompressionJobs, the manager's included, would fail to
// list them and stop reconciling all of them.
func TestUndecodableDurationRejected(t *testing.T) {
	c := apiServer(t)
	for _, latency := range []string{"fast", "20", "1d", "-5ms", "20 ms"} {
		t.Run(latency, func(t *testing.T) {
			obj, err := k8sruntime.DefaultUnstructuredConverter.ToUnstructured(valid("latency"))
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{Object: obj}
			u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("CompressionJob"))
			if err := unstructured.SetNestedField(u.Object, latency, "spec", "acceptance", "maxLatency"); err != nil {
				t.Fatal(err)
			}
			err = c.Create(context.Background(), u)
			if err == nil {
				_ = c.Delete(context.Background(), u)
				t.Fatalf("maxLatency %q was accepted", latency)
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.acceptance.maxLatency must be a positive duration") {
				t.Errorf("maxLatency %q: %v, want Invalid naming spec.acceptance.maxLatency", latency, err)
			}
		})
	}
	ok := valid("latency-ok")
	ok.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxLatency: &metav1.Duration{Duration: 1500 * time.Microsecond}}
	if err := c.Create(context.Background(), ok); err != nil {
		t.Fatalf("maxLatency %s was rejected: %v", ok.Spec.Acceptance.MaxLatency.Duration, err)
	}
}

// smoothQuant.alpha takes the words auto and off beside numbers.
func TestSmoothQuantAlphaWords(t *testing.T) {
	c := apiServer(t)
	for _, alpha := range []string{"auto", "off", "0.85"} {
		cpj := valid("alpha-" + strings.ReplaceAll(alpha, ".", "-"))
		quantize(cpj).SmoothQuant = &v1alpha1.SmoothQuant{Alpha: alpha}
		if err := c.Create(context.Background(), cpj); err != nil {
			t.Errorf("alpha %q was rejected: %v", alpha, err)
		}
	}
}

// TestValidSpecGetsDefaults creates valid specs and checks the defaults the
// API server fills in.
func TestValidSpecGetsDefaults(t *testing.T) {
	c := apiServer(t)
	ctx := context.Background()
	cpj := valid("defaults")
	if err := c.Create(ctx, cpj); err != nil {
		t.Fatalf("a valid spec was rejected: %v", err)
	}
	var got v1alpha1.CompressionJob
	if err := c.Get(ctx, client.ObjectKeyFromObject(cpj), &got); err != nil {
		t.Fatal(err)
	}
	want := valid("defaults").Spec
	want.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyRetain
	want.Dataset.Format = v1alpha1.DatasetFormatNPZ
	want.Evaluation = v1alpha1.EvaluationSpec{LatencyBatchSize: 1, LatencyRuns: 50}
	for i := range want.Stages {
		want.Stages[i].BackoffLimit = ptr.To[int32](2)
	}
	*want.Stages[0].Prune = v1alpha1.PruneSpec{Method: v1alpha1.PruneMagnitude, Sparsity: "0.5",
		Criterion: v1alpha1.CriterionL1, Storage: v1alpha1.StorageDense, CalibrationSamples: 512, Dampening: "0.01"}
	*want.Stages[1].Distill = v1alpha1.DistillSpec{Epochs: 1, BatchSize: 64, Temperature: "auto", Alpha: "0.7",
		Optimizer: v1alpha1.OptimizerAdam, LearningRate: "0.001", Schedule: v1alpha1.ScheduleConstant, Momentum: "0.9", WeightDecay: "0"}
	*want.Stages[2].Quantize = v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Bits: 8, PerChannel: ptr.To(true),
		ActivationType: v1alpha1.ActivationUInt8, BlockSize: 32, Format: v1alpha1.FormatQDQ, Algorithm: v1alpha1.AlgorithmRTN, IOType: v1alpha1.IOFloat32,
		Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationMinMax, Samples: 256, Percentile: "99.99"}}
	if diff := cmp.Diff(want, got.Spec); diff != "" {
		t.Errorf("defaulted spec (-want +got):\n%s", diff)
	}

	// Other valid shapes: n:m, hessian with a pattern, int4 weight-only in
	// MatMulNBits, a custom stage, gates at their bounds, file:// and mem://.
	more := valid("more-shapes")
	more.Spec.Source = v1alpha1.ModelSource{URI: "file:///models/m.onnx", SHA256: "sha256:" + strings.Repeat("a", 64)}
	more.Spec.Output.URI = "mem://out"
	more.Spec.Acceptance = &v1alpha1.AcceptanceSpec{MaxAccuracyDrop: "0", MinTop1Agreement: "1", MinCosine: "0.999", MaxBytes: ptr.To[int64](1 << 20),
		MaxRelativeError: "0", MinSnrDb: "-3.5"}
	more.Spec.Parallelism = &v1alpha1.ParallelismSpec{Shards: 16, Layers: 64, LayerInputs: v1alpha1.LayerInputsOriginal}
	more.Spec.Evaluation.Inputs = []v1alpha1.EvaluationInput{
		{Name: "input", Shape: []int64{512}, Range: []string{"-1", "1"}},
		{Name: "state", Shape: []int64{2, 1, 128}, Value: "0"},
		{Name: "sr", Value: "16000"},
		{Name: "onnx::Flatten_0"},
	}
	more.Spec.Stages = []v1alpha1.Stage{
		{Name: "nm", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneNM, Pattern: "2:4"}}},
		{Name: "obs", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypePrune, Prune: &v1alpha1.PruneSpec{Method: v1alpha1.PruneHessian, Pattern: "1:8"}}},
		{Name: "int4", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Format: v1alpha1.FormatMatMulNBits, BlockSize: 128}}},
		{Name: "gptq", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Algorithm: v1alpha1.AlgorithmGPTQ}}},
		{Name: "smooth", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{Alpha: "1"}}}},
		{Name: "int4-all", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, SensitiveLayers: v1alpha1.SensitiveInt4}}},
		{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{Image: "registry.example/mine:1", Env: []v1alpha1.CustomEnvVar{{Name: "MODE", Value: "fast"}}}}},
	}
	if err := c.Create(ctx, more); err != nil {
		t.Fatalf("a valid spec was rejected: %v", err)
	}
}

// celMessages lists the message of every x-kubernetes-validations rule in
// the generated CRD.
func celMessages(t *testing.T) []string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "config", "crd", "bases", "kompress.dev_compressionjobs.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		t.Fatal(err)
	}
	var msgs []string
	var walk func(s *apiextensionsv1.JSONSchemaProps)
	walk = func(s *apiextensionsv1.JSONSchemaProps) {
		if s == nil {
			return
		}
		for _, r := range s.XValidations {
			msgs = append(msgs, r.Message)
		}
		for _, p := range s.Properties {
			walk(&p)
		}
		if s.Items != nil {
			walk(s.Items.Schema)
		}
		if s.AdditionalProperties != nil {
			walk(s.AdditionalProperties.Schema)
		}
	}
	for _, v := range crd.Spec.Versions {
		walk(v.Schema.OpenAPIV3Schema)
	}
	if len(msgs) < 30 {
		t.Fatalf("found only %d CEL rules in the CRD", len(msgs))
	}
	return msgs
}
