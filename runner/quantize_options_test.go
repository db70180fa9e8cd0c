package runner

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/quantize"
)

func TestQuantizeOptions(t *testing.T) {
	no := false
	yes := true
	defaults := quantize.Options{
		Bits: 8, BlockSize: 32, Activation: quantize.UInt8, Format: quantize.QDQ, Algorithm: quantize.RTN,
		Calibration: quantize.CalibrationOptions{Method: quantize.CalibrationMinMax, Samples: 256, Percentile: 99.99},
	}
	with := func(f func(o *quantize.Options)) quantize.Options {
		o := defaults
		f(&o)
		return o
	}
	tests := []struct {
		name string
		spec v1alpha1.QuantizeSpec
		want quantize.Options
	}{
		{"static, the rest left to the defaults", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic},
			with(func(o *quantize.Options) { o.Method = quantize.Static })},
		{"dynamic per tensor, asymmetric", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic, PerChannel: &no, Symmetric: &no},
			with(func(o *quantize.Options) { o.Method, o.PerTensor, o.Symmetric = quantize.Dynamic, true, &no })},
		{"true pointers are the defaults", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic, PerChannel: &yes, Symmetric: &yes},
			with(func(o *quantize.Options) { o.Method, o.Symmetric = quantize.Dynamic, &yes })},
		{"int4 weight-only symmetric", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Symmetric: &yes},
			with(func(o *quantize.Options) { o.Method, o.Bits, o.Symmetric = quantize.WeightOnly, 4, &yes })},
		{"int4 matmulnbits blocks of 64", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, BlockSize: 64, Format: v1alpha1.FormatMatMulNBits},
			with(func(o *quantize.Options) {
				o.Method, o.Bits, o.BlockSize, o.Format = quantize.WeightOnly, 4, 64, quantize.MatMulNBits
			})},
		{"int4 keeping sensitive layers in float", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, SensitiveLayers: v1alpha1.SensitiveFloat},
			with(func(o *quantize.Options) {
				o.Method, o.Bits, o.SensitiveLayers = quantize.WeightOnly, 4, quantize.SensitiveFloat
			})},
		{"int4 gptq", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, Algorithm: v1alpha1.AlgorithmGPTQ, Format: v1alpha1.FormatMatMulNBits},
			with(func(o *quantize.Options) {
				o.Method, o.Bits, o.Algorithm, o.Format = quantize.WeightOnly, 4, quantize.GPTQ, quantize.MatMulNBits
			})},
		{"int4 without the guard", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, SensitiveLayers: v1alpha1.SensitiveInt4},
			with(func(o *quantize.Options) {
				o.Method, o.Bits, o.SensitiveLayers = quantize.WeightOnly, 4, quantize.SensitiveInt4
			})},
		{"static int8 activations, percentile", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, ActivationType: v1alpha1.ActivationInt8,
			Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationPercentile, Samples: 64, Percentile: "99.9"}},
			with(func(o *quantize.Options) {
				o.Method, o.Activation = quantize.Static, quantize.Int8
				o.Calibration = quantize.CalibrationOptions{Method: quantize.CalibrationPercentile, Samples: 64, Percentile: 99.9}
			})},
		{"entropy calibration, exclusions", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic,
			Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationEntropy},
			Exclude:     &v1alpha1.Exclusion{Nodes: []string{"c2"}, OpTypes: []string{"Gemm"}}},
			with(func(o *quantize.Options) {
				o.Method, o.Calibration.Method = quantize.Static, quantize.CalibrationEntropy
				o.ExcludeNodes, o.ExcludeOpTypes = []string{"c2"}, []string{"Gemm"}
			})},
		{"static with SmoothQuant", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{Alpha: "0.75"}},
			with(func(o *quantize.Options) {
				o.Method, o.SmoothQuant = quantize.Static, &quantize.SmoothQuantOptions{Alpha: 0.75}
			})},
		{"SmoothQuant's default alpha", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{}},
			with(func(o *quantize.Options) {
				o.Method, o.SmoothQuant = quantize.Static, &quantize.SmoothQuantOptions{Alpha: quantize.DefaultSmoothQuantAlpha}
			})},
		{"SmoothQuant alpha auto", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{Alpha: "auto"}},
			with(func(o *quantize.Options) {
				o.Method, o.SmoothQuant = quantize.Static, &quantize.SmoothQuantOptions{Alpha: quantize.DefaultSmoothQuantAlpha, Auto: true}
			})},
		{"SmoothQuant alpha off: none", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{Alpha: "off"}},
			with(func(o *quantize.Options) { o.Method = quantize.Static })},
		{"fp16 with float16 inputs and outputs", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeFP16, IOType: v1alpha1.IOFloat16},
			with(func(o *quantize.Options) { o.Method, o.Float16IO = quantize.FP16, true })},
		{"fp16 with float32 inputs and outputs", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeFP16, IOType: v1alpha1.IOFloat32},
			with(func(o *quantize.Options) { o.Method = quantize.FP16 })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := quantizeOptions(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

// TestQuantizeOptionsErrors: a spec that cannot be applied fails before
// any work, with ErrSpec (bad input) naming the spec's field.
func TestQuantizeOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		spec v1alpha1.QuantizeSpec
		say  string
	}{
		{"unknown method", v1alpha1.QuantizeSpec{Method: "magic"}, `quantize.method "magic": want dynamic, static, weightOnly or fp16`},
		{"4 bits static", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Bits: 4}, "quantize.bits 4 is only supported with method weightOnly, not static"},
		{"6 bits", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 6}, "quantize.bits 6: want 4 or 8"},
		{"block size 48", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, BlockSize: 48}, "quantize.blockSize 48: want a power of two from 16 to 256"},
		{"block size 512", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, BlockSize: 512}, "quantize.blockSize 512: want a power of two from 16 to 256"},
		{"matmulnbits dynamic", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic, Format: v1alpha1.FormatMatMulNBits}, "quantize.format matmulnbits is only supported with method weightOnly, not dynamic"},
		{"unknown format", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Format: "gguf"}, `quantize.format "gguf": want qdq or matmulnbits`},
		{"int16 activations", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, ActivationType: "int16"}, `quantize.activationType "int16": want uint8 or int8`},
		{"percentile not a number", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Method: v1alpha1.CalibrationPercentile, Percentile: "high"}},
			`calibration.percentile "high": want a decimal number in [50, 100]`},
		{"percentile above 100", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Percentile: "101"}},
			`calibration.percentile "101": want a decimal number in [50, 100]`},
		{"unknown calibration", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Method: "kl"}}, `calibration.method "kl": want minmax, percentile or entropy`},
		{"negative samples", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, Calibration: v1alpha1.Calibration{Samples: -1}}, "quantize.calibration.samples -1: want a positive number"},
		{"sensitive layers with 8 bits", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, SensitiveLayers: v1alpha1.SensitiveInt8}, "quantize.sensitiveLayers applies to method weightOnly with bits 4, not weightOnly with bits 8"},
		{"unknown sensitive layers", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeWeightOnly, Bits: 4, SensitiveLayers: "int2"}, `quantize.sensitiveLayers "int2": want int8, float or int4`},
		{"SmoothQuant with dynamic", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic, SmoothQuant: &v1alpha1.SmoothQuant{}},
			"quantize.smoothQuant is only supported with method static, not dynamic"},
		{"SmoothQuant alpha 0", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeStatic, SmoothQuant: &v1alpha1.SmoothQuant{Alpha: "0"}},
			`quantize.smoothQuant.alpha "0": want a decimal number in (0, 1], auto or off`},
		{"unknown io type", v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeFP16, IOType: "bfloat16"}, `quantize.ioType "bfloat16": want float32 or float16`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := quantizeOptions(tc.spec)
			if !errors.Is(err, quantize.ErrSpec) || ExitCode(err) != 65 {
				t.Fatalf("error %v (exit %d), want quantize.ErrSpec (exit 65)", err, ExitCode(err))
			}
			if d := cmp.Diff("invalid quantize spec: "+tc.say, err.Error()); d != "" {
				t.Errorf("message (-want +got):\n%s", d)
			}
		})
	}
}

// TestQuantizeOptionsDefaults: the CRD's defaults and the runner's, for
// a task that did not come through the API server, agree.
func TestQuantizeOptionsDefaults(t *testing.T) {
	for _, method := range []v1alpha1.QuantizeMethod{v1alpha1.QuantizeStatic, v1alpha1.QuantizeDynamic, v1alpha1.QuantizeWeightOnly, v1alpha1.QuantizeFP16} {
		job := defaulted(t, "  - {name: q, type: Quantize, quantize: {method: "+string(method)+"}}\n")
		fromCRD, err := quantizeOptions(*job.Spec.Stages[0].Quantize)
		if err != nil {
			t.Fatal(err)
		}
		bare, err := quantizeOptions(v1alpha1.QuantizeSpec{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(fromCRD, bare); d != "" {
			t.Errorf("%s: the CRD's defaults (-) and the runner's (+) differ:\n%s", method, d)
		}
	}
}
