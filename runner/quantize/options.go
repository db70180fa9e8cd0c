package quantize

import (
	"fmt"

	"github.com/kompress/kompress/pipeline/shard"
	"github.com/kompress/kompress/runner/exchange"
)

// Method selects a quantization algorithm.
type Method string

// The methods.
const (
	// Dynamic writes int8 weights; activations are quantized at run time
	// (DynamicQuantizeLinear + MatMulInteger/ConvInteger).
	Dynamic Method = "dynamic"
	// Static writes the QDQ form ONNX Runtime fuses into integer kernels,
	// with activation ranges calibrated on the Calibration data.
	Static Method = "static"
	// WeightOnly writes int4 or int8 weights in blocks, computed in float.
	WeightOnly Method = "weightOnly"
	// FP16 converts weights and computation to float16.
	FP16 Method = "fp16"
)

// Format says how WeightOnly stores its weights.
type Format string

// The formats.
const (
	// QDQ is DequantizeLinear with block_size (opset 21).
	QDQ Format = "qdq"
	// MatMulNBits is com.microsoft MatMulNBits (MatMul weights only).
	MatMulNBits Format = "matmulnbits"
)

// Algorithm says how WeightOnly rounds weights to their blocks' levels.
type Algorithm string

// The algorithms.
const (
	// RTN rounds each weight to the nearest level of its block.
	RTN Algorithm = "rtn"
	// GPTQ rounds the input features of each weight in order and moves
	// each rounding error onto the features not yet rounded, through the
	// inverse Hessian of the layer's calibration inputs (Frantar et al.,
	// "GPTQ", 2022): the layer's output error on that data, not each
	// weight's own, is what it keeps small. MatMul and Gemm weights whose
	// inputs the model computes; the others are rounded to nearest.
	GPTQ Algorithm = "gptq"
)

// DefaultGPTQDampening is the fraction of the mean diagonal of the
// Hessian GPTQ adds to its diagonal (gptq.py's percdamp).
const DefaultGPTQDampening = 0.01

// SensitiveLayers says what 4-bit weight-only quantization does with the
// weights whose 4-bit error costs the most output fidelity.
type SensitiveLayers string

// What happens to sensitive weights.
const (
	// SensitiveInt8 (the default) keeps the fewest, most sensitive first,
	// at 8 bits that hold the output cosine at the fidelity target.
	SensitiveInt8 SensitiveLayers = "int8"
	// SensitiveFloat keeps them in float.
	SensitiveFloat SensitiveLayers = "float"
	// SensitiveInt4 quantizes every weight to 4 bits: no guard.
	SensitiveInt4 SensitiveLayers = "int4"
)

// CalibrationMethod says how Static chooses activation ranges.
type CalibrationMethod string

// The calibration methods.
const (
	// CalibrationMinMax takes the smallest and largest value seen.
	CalibrationMinMax CalibrationMethod = "minmax"
	// CalibrationPercentile clips at a percentile of absolute values.
	CalibrationPercentile CalibrationMethod = "percentile"
	// CalibrationEntropy minimizes the KL divergence of the quantized
	// distribution (TensorRT's entropy calibration).
	CalibrationEntropy CalibrationMethod = "entropy"
)

// Defaults for options left at zero.
const (
	DefaultBits               = 8
	DefaultBlockSize          = 32
	DefaultCalibrationSamples = 256
	DefaultPercentile         = 99.99
)

// CalibrationOptions configure Static's activation ranges.
type CalibrationOptions struct {
	// Method: CalibrationMinMax (default), CalibrationPercentile or
	// CalibrationEntropy.
	Method CalibrationMethod
	// Samples caps the calibration samples read; default
	// DefaultCalibrationSamples.
	Samples int
	// Percentile of absolute activations kept by CalibrationPercentile,
	// in [50, 100]; default DefaultPercentile.
	Percentile float64
	// Shards, when not 0, collects statistics that merge exactly on this
	// many workers (spec.parallelism.shards; see calibrateShards): the
	// ranges are the same for every count, a power of two up to
	// shard.Units. 0 keeps ONNX Runtime's streaming collectors.
	Shards int
	// Exchange is where the shards' partial statistics meet; nil runs
	// all Shards in this process (exchange.Local). A stage pod that is
	// one index of an Indexed Job passes exchange.Storage.
	Exchange exchange.Exchange
	// OriginalLayerInputs calibrates each block GPTQ rounds on the inputs
	// the float model gives it, not the rounded blocks before it
	// (spec.parallelism.layerInputs: Original): blocks are then
	// independent, and Layers workers round them at once, with the same
	// result for every count (spec.parallelism.layers).
	OriginalLayerInputs bool
	Layers              int
	// LayerPod, when set, makes this process one index of an Indexed Job
	// of Layers pods (its Of) rounding with GPTQ: it rounds only its own
	// range of blocks and hands them to index 0 (gptq_layerpod.go), which
	// assembles the model from every index's; the other indices return
	// layerwise.ErrHandedOver once their partial is committed.
	LayerPod *exchange.Storage
}

// Options configure Quantize. Every field but Method has a default, its
// zero value. Fields are named as the stage spec's (quantize.bits is
// Bits), and so are they in errors, which wrap ErrSpec.
type Options struct {
	// Method is required.
	Method Method
	// Bits of quantized weights: 8 (default), or 4 with WeightOnly.
	Bits int
	// PerTensor quantizes each weight with one scale; by default each
	// output channel has its own.
	PerTensor bool
	// Symmetric weights have no zero point of their own (it is the middle
	// of their type). nil is the method's default: symmetric, except
	// WeightOnly, whose blocks each get a zero point: 4-bit blocks of
	// trained (heavy-tailed) weights round with about a fifth less error
	// when their levels span the block's own [min, max].
	Symmetric *bool
	// Activation is the type of Static's activations: UInt8 (default) or
	// Int8.
	Activation QType
	// BlockSize of WeightOnly's blocks: a power of two from 16 to 256;
	// default DefaultBlockSize.
	BlockSize int
	// Format of WeightOnly's weights: QDQ (default) or MatMulNBits.
	Format Format
	// Algorithm of WeightOnly: RTN (default) or GPTQ, which reads the
	// Calibration data (Calibration.Samples of it).
	Algorithm Algorithm
	// GPTQDampening is GPTQ's dampening, a fraction in (0, 1]; default
	// DefaultGPTQDampening.
	GPTQDampening float64
	// SensitiveLayers of 4-bit WeightOnly: SensitiveInt8 (default),
	// SensitiveFloat or SensitiveInt4. Which weights are sensitive is
	// measured on the Calibration data (synthesized inputs without it).
	SensitiveLayers SensitiveLayers
	// Calibration of Static.
	Calibration CalibrationOptions
	// SmoothQuant, when set, migrates the outlier channels of Static's
	// MatMul and Gemm inputs into their weights before calibration.
	SmoothQuant *SmoothQuantOptions
	// Float16IO makes an FP16 model's float inputs and outputs float16
	// too; by default they stay float32.
	Float16IO bool
	// ExcludeNodes and ExcludeOpTypes name nodes kept in float.
	ExcludeNodes   []string
	ExcludeOpTypes []string
}

// Validate reports the first option that cannot be applied, wrapping
// ErrSpec.
func (o Options) Validate() error {
	_, err := o.resolve()
	return err
}

// options are Options with their defaults applied and checked.
type options struct {
	method     Method
	bits       int
	perChannel bool
	symmetric  bool
	activation QType
	blockSize  int
	format     Format
	sensitive  SensitiveLayers
	algorithm  Algorithm
	damp       float64
	calib      CalibrationOptions
	smooth     *SmoothQuantOptions
	ioFloat16  bool
	exclNodes  map[string]bool
	exclOps    map[string]bool
}

// resolve applies the defaults and rejects what cannot be applied,
// naming the field.
func (opts Options) resolve() (*options, error) {
	o, err := opts.check()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return o, nil
}

func (opts Options) check() (*options, error) {
	o := &options{
		method: opts.Method, bits: opts.Bits, perChannel: !opts.PerTensor, symmetric: opts.Symmetric == nil || *opts.Symmetric,
		activation: opts.Activation, blockSize: opts.BlockSize, format: opts.Format, sensitive: opts.SensitiveLayers,
		algorithm: opts.Algorithm, damp: opts.GPTQDampening,
		calib: opts.Calibration, ioFloat16: opts.Float16IO, exclNodes: map[string]bool{}, exclOps: map[string]bool{},
	}
	switch o.method {
	case Dynamic, Static, WeightOnly, FP16:
	default:
		return nil, fmt.Errorf("quantize.method %q: want dynamic, static, weightOnly or fp16", opts.Method)
	}
	if opts.Symmetric == nil && o.method == WeightOnly {
		o.symmetric = false
	}
	if o.bits == 0 {
		o.bits = DefaultBits
	}
	if o.bits != 8 && o.bits != 4 {
		return nil, fmt.Errorf("quantize.bits %d: want 4 or 8", o.bits)
	}
	if o.bits == 4 && o.method != WeightOnly {
		return nil, fmt.Errorf("quantize.bits 4 is only supported with method weightOnly, not %s", o.method)
	}
	switch o.activation {
	case 0:
		o.activation = UInt8
	case UInt8, Int8:
	default:
		return nil, fmt.Errorf("quantize.activation %v: want uint8 or int8", opts.Activation)
	}
	if o.blockSize == 0 {
		o.blockSize = DefaultBlockSize
	}
	if o.blockSize < 16 || o.blockSize > 256 || o.blockSize&(o.blockSize-1) != 0 {
		return nil, fmt.Errorf("quantize.blockSize %d: want a power of two from 16 to 256", o.blockSize)
	}
	switch o.format {
	case "":
		o.format = QDQ
	case QDQ:
	case MatMulNBits:
		if o.method != WeightOnly {
			return nil, fmt.Errorf("quantize.format matmulnbits is only supported with method weightOnly, not %s", o.method)
		}
	default:
		return nil, fmt.Errorf("quantize.format %q: want qdq or matmulnbits", opts.Format)
	}
	switch o.algorithm {
	case "":
		o.algorithm = RTN
	case RTN:
	case GPTQ:
		if o.method != WeightOnly {
			return nil, fmt.Errorf("quantize.algorithm gptq is only supported with method weightOnly, not %s", o.method)
		}
	default:
		return nil, fmt.Errorf("quantize.algorithm %q: want rtn or gptq", opts.Algorithm)
	}
	if o.damp == 0 {
		o.damp = DefaultGPTQDampening
	}
	if !(o.damp > 0 && o.damp <= 1) {
		return nil, fmt.Errorf("quantize.gptqDampening %g: want a fraction in (0, 1]", opts.GPTQDampening)
	}
	switch o.sensitive {
	case "":
		if o.method == WeightOnly && o.bits == 4 {
			o.sensitive = SensitiveInt8
		}
	case SensitiveInt8, SensitiveFloat, SensitiveInt4:
		if o.method != WeightOnly || o.bits != 4 {
			return nil, fmt.Errorf("quantize.sensitiveLayers applies to method weightOnly with bits 4, not %s with bits %d", o.method, o.bits)
		}
	default:
		return nil, fmt.Errorf("quantize.sensitiveLayers %q: want int8, float or int4", opts.SensitiveLayers)
	}
	if err := o.resolveSmoothQuant(opts.SmoothQuant); err != nil {
		return nil, err
	}
	if o.calib.Method == "" {
		o.calib.Method = CalibrationMinMax
	}
	if _, err := NewCollector(o.calib); err != nil {
		return nil, err
	}
	if o.calib.Samples == 0 {
		o.calib.Samples = DefaultCalibrationSamples
	}
	if o.calib.Shards != 0 && !shard.Valid(o.calib.Shards) {
		return nil, fmt.Errorf("parallelism.shards %d: want a power of two from 1 to %d", o.calib.Shards, shard.Units)
	}
	if o.calib.Layers > 1 && !o.calib.OriginalLayerInputs {
		return nil, fmt.Errorf("parallelism.layers %d: blocks are independent only with parallelism.layerInputs: Original", o.calib.Layers)
	}
	if err := o.checkLayerPod(); err != nil {
		return nil, err
	}
	if o.calib.Samples < 0 {
		return nil, fmt.Errorf("quantize.calibration.samples %d: want a positive number", o.calib.Samples)
	}
	for _, n := range opts.ExcludeNodes {
		o.exclNodes[n] = true
	}
	for _, t := range opts.ExcludeOpTypes {
		o.exclOps[t] = true
	}
	return o, nil
}

// resolveSmoothQuant applies SmoothQuant's default alpha and checks it.
func (o *options) resolveSmoothQuant(sq *SmoothQuantOptions) error {
	if sq == nil {
		return nil
	}
	if o.method != Static {
		return fmt.Errorf("quantize.smoothQuant is only supported with method static, not %s", o.method)
	}
	s := *sq
	if s.Alpha == 0 {
		s.Alpha = DefaultSmoothQuantAlpha
	}
	if !s.Auto && !(s.Alpha > 0 && s.Alpha <= 1) {
		return fmt.Errorf("quantize.smoothQuant.alpha %g: want a fraction in (0, 1]", sq.Alpha)
	}
	o.smooth = &s
	return nil
}

// excluded says why the options keep a node in float, or "".
func (o *options) excluded(opType, name string) Reason {
	switch {
	case name != "" && o.exclNodes[name]:
		return ReasonExcludedNode
	case o.exclOps[opType]:
		return ReasonExcludedOpType
	}
	return ""
}

// checkLayerPod refuses a layer pod that is not GPTQ's or whose index is
// not one of parallelism.layers.
func (o *options) checkLayerPod() error {
	x, layers := o.calib.LayerPod, o.calib.Layers
	switch {
	case x == nil:
		return nil
	case o.algorithm != GPTQ:
		return fmt.Errorf("parallelism.layers %d: only quantize.algorithm gptq runs as layer pods, not %s", layers, o.algorithm)
	case x.Of != layers || x.Index < 0 || x.Index >= layers:
		return fmt.Errorf("parallelism.layers %d: this runner is index %d of an Indexed Job of %d layer pods", layers, x.Index, x.Of)
	}
	return nil
}
