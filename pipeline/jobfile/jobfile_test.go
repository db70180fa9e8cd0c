package jobfile

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
)

const valid = `
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata:
  name: mnist
spec:
  source: {uri: "file://./models/mnist-8.onnx"}
  output: {uri: "file://./out"}
  dataset: {uri: "file://./data/mnist.npz"}
  stages:
  - name: prune
    type: Prune
    prune: {method: magnitude, sparsity: "0.5"}
  - name: int8
    type: Quantize
    quantize: {method: static}
`

func TestDecodeAppliesCRDDefaults(t *testing.T) {
	job, err := Decode([]byte(valid))
	if err != nil {
		t.Fatal(err)
	}
	q := job.Spec.Stages[1].Quantize
	yes := true
	want := &v1alpha1.QuantizeSpec{
		Method: v1alpha1.QuantizeStatic, Bits: 8, PerChannel: &yes, // symmetric: no default, each method has its own
		ActivationType: v1alpha1.ActivationUInt8, BlockSize: 32, Format: v1alpha1.FormatQDQ, Algorithm: v1alpha1.AlgorithmRTN,
		Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationMinMax, Samples: 256, Percentile: "99.99"},
		IOType:      v1alpha1.IOFloat32,
	}
	if diff := cmp.Diff(want, q); diff != "" {
		t.Errorf("quantize defaults (-want +got):\n%s", diff)
	}
	if got := *job.Spec.Stages[0].BackoffLimit; got != 2 {
		t.Errorf("backoffLimit default = %d, want 2", got)
	}
	if got := job.Spec.Stages[0].Prune.Scope; got != "" {
		t.Errorf("prune.scope = %q, want unset (the method chooses)", got)
	}
	if got := job.Spec.Evaluation.LatencyBatchSize; got != 1 {
		t.Errorf("evaluation.latencyBatchSize default = %d, want 1", got)
	}
	if got := job.Spec.Output.IntermediateArtifacts; got != v1alpha1.ArtifactPolicyRetain {
		t.Errorf("output.intermediateArtifacts default = %q, want Retain", got)
	}
}

// An empty smoothQuant turns SmoothQuant on with the CRD's alpha.
func TestDecodeDefaultsSmoothQuantAlpha(t *testing.T) {
	job, err := Decode([]byte(strings.Replace(valid, `{method: static}`, `{method: static, smoothQuant: {}}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&v1alpha1.SmoothQuant{Alpha: "0.5"}, job.Spec.Stages[1].Quantize.SmoothQuant); diff != "" {
		t.Errorf("smoothQuant (-want +got):\n%s", diff)
	}
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(string) string
		want []string // substrings of the error
	}{
		{"bad source scheme", repl(`file://./models/mnist-8.onnx`, `http://x/m.onnx`), []string{"spec.source.uri", "scheme s3, gs, azblob, file or mem"}},
		{"output equals source", repl(`file://./out`, `file://./models/mnist-8.onnx`), []string{"spec.output.uri must differ"}},
		{"sparsity out of range", repl(`sparsity: "0.5"`, `sparsity: "1.5"`), []string{"spec.stages[0].prune.sparsity", "(0, 1)"}},
		{"sparsity not decimal", repl(`sparsity: "0.5"`, `sparsity: "half"`), []string{"prune.sparsity must be a decimal string"}},
		{"body does not match type", repl(`type: Prune`, `type: Distill`), []string{"exactly one of prune, distill, quantize or custom"}},
		{"bits 4 with static", repl(`{method: static}`, `{method: static, bits: 4}`), []string{"bits 4 is only supported with method weightOnly"}},
		{"bits 5", repl(`{method: static}`, `{method: weightOnly, bits: 5}`), []string{"quantize.bits must be 4 or 8"}},
		{"n not below m", repl(`{method: magnitude, sparsity: "0.5"}`, `{method: nm, pattern: "4:4"}`), []string{"prune.pattern must be N:M with 0 < N < M"}},
		{"duplicate stage names", repl(`name: int8`, `name: prune`), []string{"Duplicate value"}},
		{"unknown method", repl(`{method: static}`, `{method: awq}`), []string{"spec.stages[1].quantize.method", "Unsupported value"}},
		{"calibration method", repl(`{method: static}`, `{method: static, calibration: {method: mse}}`), []string{"calibration.method", "Unsupported value"}},
		{"smoothQuant with dynamic", repl(`{method: static}`, `{method: dynamic, smoothQuant: {alpha: "0.5"}}`), []string{"spec.stages[1].quantize", "quantize.smoothQuant is only supported with method static"}},
		{"smoothQuant alpha 0", repl(`{method: static}`, `{method: static, smoothQuant: {alpha: "0"}}`),
			[]string{"spec.stages[1].quantize.smoothQuant.alpha", "quantize.smoothQuant.alpha must be a decimal string in (0, 1]"}},
		{"no stages", func(s string) string { return s[:strings.Index(s, "  stages:")] + "  stages: []\n" }, []string{"spec.stages", "should have at least 1 items"}},
		{"negative deadline", repl(`  stages:`, "  activeDeadlineSeconds: 0\n  stages:"), []string{"spec.activeDeadlineSeconds", "greater than or equal to 1"}},
		{"unknown field", repl(`{method: static}`, `{method: static, bitz: 4}`), []string{"unknown field", "bitz"}},
		{"wrong kind", repl(`kind: CompressionJob`, `kind: Job`), []string{`expected apiVersion kompress.dev/v1alpha1 kind CompressionJob`}},
		{"sensitivity scope with magnitude", repl(`{method: magnitude, sparsity: "0.5"}`, `{method: magnitude, sparsity: "0.5", scope: sensitivity}`), []string{"prune.scope sensitivity applies to methods structured and entropy"}},
		{"global scope with hessian", repl(`{method: magnitude, sparsity: "0.5"}`, `{method: hessian, sparsity: "0.5", scope: global}`), []string{"hessian and nm work layer by layer"}},
		{"three shards", repl(`  stages:`, "  parallelism: {shards: 3}\n  stages:"),
			[]string{"spec.parallelism.shards", "must be a power of two from 1 to 16 (1, 2, 4, 8 or 16)"}},
		{"32 shards", repl(`  stages:`, "  parallelism: {shards: 32}\n  stages:"),
			[]string{"spec.parallelism.shards", "must be a power of two from 1 to 16"}},
		{"shards without a dataset", func(s string) string {
			return strings.Replace(strings.Replace(s, "  dataset: {uri: \"file://./data/mnist.npz\"}\n", "", 1), "  stages:", "  parallelism: {shards: 2}\n  stages:", 1)
		}, []string{"spec.parallelism.shards above 1 needs spec.dataset"}},
		{"stage name not a DNS label", repl(`name: int8`, `name: Int_8`), []string{"stage name must be a DNS label"}},
		// A Custom stage's env is name and value: no Secret or ConfigMap
		// reaches its image but spec.storage.secretRef's.
		{"custom env from a Secret", repl("    type: Quantize\n    quantize: {method: static}",
			"    type: Custom\n    custom: {image: registry.example/t:1, env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: deployer, key: token}}}]}"),
			[]string{"unknown field", "spec.stages[1].custom.env[0].valueFrom"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			doc := tc.edit(valid)
			_, err := Decode([]byte(doc))
			if err == nil {
				t.Fatalf("accepted:\n%s", doc)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestParseMultiDocument(t *testing.T) {
	second := strings.Replace(valid, "name: mnist", "name: mnist-2", 1)
	jobs, err := Parse([]byte("# jobs\n---\n" + valid + "\n---\n" + second))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	if diff := cmp.Diff([]string{"mnist", "mnist-2"}, names); diff != "" {
		t.Error(diff)
	}
	if _, err := Parse([]byte("# nothing\n")); err == nil || !strings.Contains(err.Error(), "no CompressionJob") {
		t.Errorf("empty file: err = %v", err)
	}
}

func repl(old, new string) func(string) string {
	return func(s string) string {
		if !strings.Contains(s, old) {
			panic("test edit does not apply: " + old)
		}
		return strings.Replace(s, old, new, 1)
	}
}
