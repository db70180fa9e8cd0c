package runner

import (
	"fmt"
	"strconv"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/runner/quantize"
)

// quantizeOptions translates a stage's quantize spec into
// quantize.Options: enums and pointer bools into Go values, the decimal
// percentile into a float64, and the CRD's defaults into fields the spec
// leaves empty (a task that did not come through the API server). Errors
// name the spec's field and wrap quantize.ErrSpec, which is bad input.
func quantizeOptions(spec v1alpha1.QuantizeSpec) (quantize.Options, error) {
	o := quantize.Options{
		Bits: int(spec.Bits), BlockSize: int(spec.BlockSize),
		PerTensor: spec.PerChannel != nil && !*spec.PerChannel,
		Symmetric: spec.Symmetric,
		Calibration: quantize.CalibrationOptions{
			Samples: int(spec.Calibration.Samples), Percentile: quantize.DefaultPercentile,
		},
	}
	var ok bool
	if o.Method, ok = quantizeMethods[spec.Method]; !ok {
		return quantize.Options{}, quantizeSpecErr("quantize.method %q: want dynamic, static, weightOnly or fp16", spec.Method)
	}
	if o.Bits == 0 {
		o.Bits = quantize.DefaultBits
	}
	if o.BlockSize == 0 {
		o.BlockSize = quantize.DefaultBlockSize
	}
	switch spec.ActivationType {
	case v1alpha1.ActivationUInt8, "":
		o.Activation = quantize.UInt8
	case v1alpha1.ActivationInt8:
		o.Activation = quantize.Int8
	default:
		return quantize.Options{}, quantizeSpecErr("quantize.activationType %q: want uint8 or int8", spec.ActivationType)
	}
	switch spec.Format {
	case v1alpha1.FormatQDQ, "":
		o.Format = quantize.QDQ
	case v1alpha1.FormatMatMulNBits:
		o.Format = quantize.MatMulNBits
	default:
		return quantize.Options{}, quantizeSpecErr("quantize.format %q: want qdq or matmulnbits", spec.Format)
	}
	switch spec.Algorithm {
	case v1alpha1.AlgorithmRTN, "":
		o.Algorithm = quantize.RTN
	case v1alpha1.AlgorithmGPTQ:
		o.Algorithm = quantize.GPTQ
	default:
		return quantize.Options{}, quantizeSpecErr("quantize.algorithm %q: want rtn or gptq", spec.Algorithm)
	}
	switch spec.SensitiveLayers {
	case "":
	case v1alpha1.SensitiveInt8:
		o.SensitiveLayers = quantize.SensitiveInt8
	case v1alpha1.SensitiveFloat:
		o.SensitiveLayers = quantize.SensitiveFloat
	case v1alpha1.SensitiveInt4:
		o.SensitiveLayers = quantize.SensitiveInt4
	default:
		return quantize.Options{}, quantizeSpecErr("quantize.sensitiveLayers %q: want int8, float or int4", spec.SensitiveLayers)
	}
	switch spec.IOType {
	case v1alpha1.IOFloat32, "":
	case v1alpha1.IOFloat16:
		o.Float16IO = true
	default:
		return quantize.Options{}, quantizeSpecErr("quantize.ioType %q: want float32 or float16", spec.IOType)
	}
	if o.Calibration.Method, ok = calibrationMethods[spec.Calibration.Method]; !ok {
		return quantize.Options{}, quantizeSpecErr("calibration.method %q: want minmax, percentile or entropy", spec.Calibration.Method)
	}
	if p := spec.Calibration.Percentile; p != "" {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || v < 50 || v > 100 {
			return quantize.Options{}, quantizeSpecErr("calibration.percentile %q: want a decimal number in [50, 100]", p)
		}
		o.Calibration.Percentile = v
	}
	if sq := spec.SmoothQuant; sq != nil && sq.Alpha != v1alpha1.SmoothQuantOff {
		o.SmoothQuant = &quantize.SmoothQuantOptions{Alpha: quantize.DefaultSmoothQuantAlpha, Auto: sq.Alpha == v1alpha1.SmoothQuantAuto}
		if sq.Alpha != "" && !o.SmoothQuant.Auto {
			v, err := strconv.ParseFloat(sq.Alpha, 64)
			if err != nil || !(v > 0 && v <= 1) {
				return quantize.Options{}, quantizeSpecErr("quantize.smoothQuant.alpha %q: want a decimal number in (0, 1], auto or off", sq.Alpha)
			}
			o.SmoothQuant.Alpha = v
		}
	}
	if o.Calibration.Samples == 0 {
		o.Calibration.Samples = quantize.DefaultCalibrationSamples
	}
	if spec.Exclude != nil {
		o.ExcludeNodes, o.ExcludeOpTypes = spec.Exclude.Nodes, spec.Exclude.OpTypes
	}
	// The rules across fields (bits 4 only with weightOnly, ...) are the
	// package's; its messages name the fields as the spec does.
	if err := o.Validate(); err != nil {
		return quantize.Options{}, err
	}
	return o, nil
}

var quantizeMethods = map[v1alpha1.QuantizeMethod]quantize.Method{
	v1alpha1.QuantizeDynamic:    quantize.Dynamic,
	v1alpha1.QuantizeStatic:     quantize.Static,
	v1alpha1.QuantizeWeightOnly: quantize.WeightOnly,
	v1alpha1.QuantizeFP16:       quantize.FP16,
}

var calibrationMethods = map[v1alpha1.CalibrationMethod]quantize.CalibrationMethod{
	"":                             quantize.CalibrationMinMax,
	v1alpha1.CalibrationMinMax:     quantize.CalibrationMinMax,
	v1alpha1.CalibrationPercentile: quantize.CalibrationPercentile,
	v1alpha1.CalibrationEntropy:    quantize.CalibrationEntropy,
}

func quantizeSpecErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", quantize.ErrSpec, fmt.Sprintf(format, args...))
}
