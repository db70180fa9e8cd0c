package v1alpha1

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// StageType names what a stage does.
// +kubebuilder:validation:Enum=Prune;Distill;Quantize;Custom
type StageType string

const (
	StageTypePrune    StageType = "Prune"
	StageTypeDistill  StageType = "Distill"
	StageTypeQuantize StageType = "Quantize"
	StageTypeCustom   StageType = "Custom"
)

// Stage is one step of the chain: exactly one body, the one matching Type.
// +kubebuilder:validation:XValidation:rule="has(self.prune) == (self.type == 'Prune') && has(self.distill) == (self.type == 'Distill') && has(self.quantize) == (self.type == 'Quantize') && has(self.custom) == (self.type == 'Custom')",message="a stage must set exactly one of prune, distill, quantize or custom: the one matching its type"
type Stage struct {
	// Name is unique in the job and part of the stage Job's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=40
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="stage name must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
	Name string `json:"name"`

	// StageBody is what the stage does; the fields after it only say
	// where and how long its pod runs.
	StageBody `json:",inline"`

	// Resources of this stage's pod; override spec.scheduling.resources.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// NodeSelector of this stage's pod, merged over spec.scheduling.nodeSelector.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 63)",message="stage nodeSelector keys must be label keys (at most 317 characters) and values label values (at most 63 characters)"
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations of this stage's pod, added to spec.scheduling.tolerations
	// (the control plane's taints cannot be tolerated).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// BackoffLimit is how many failed pods are retried before the stage fails.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=20
	BackoffLimit *int32 `json:"backoffLimit,omitempty"`

	// ActiveDeadlineSeconds bounds this stage's Job.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`
}

// StageBody is what a stage does: its type and the one body matching it.
// It is everything of a stage that changes the work (and so the cache
// key); a new stage type adds its body here and a line to bodies.
type StageBody struct {
	// Type selects the body: Prune, Distill, Quantize or Custom.
	Type StageType `json:"type"`

	// +optional
	Prune *PruneSpec `json:"prune,omitempty"`
	// +optional
	Distill *DistillSpec `json:"distill,omitempty"`
	// +optional
	Quantize *QuantizeSpec `json:"quantize,omitempty"`
	// +optional
	Custom *CustomSpec `json:"custom,omitempty"`
}

// typedBody is one stage type's body, nil (untyped) when unset.
// +kubebuilder:object:generate=false
type typedBody struct {
	typ  StageType
	body any
}

// bodies lists every stage type with its body, in the order of the
// StageType enum: the one place the union of bodies is spelled out.
func (b *StageBody) bodies() []typedBody {
	return []typedBody{
		{StageTypePrune, orNil(b.Prune)},
		{StageTypeDistill, orNil(b.Distill)},
		{StageTypeQuantize, orNil(b.Quantize)},
		{StageTypeCustom, orNil(b.Custom)},
	}
}

// orNil turns a typed nil pointer into an untyped nil.
func orNil[T any](p *T) any {
	if p == nil {
		return nil
	}
	return p
}

// StageTypes lists the stage types this API version knows.
func StageTypes() []StageType {
	var out []StageType
	for _, tb := range (&StageBody{}).bodies() {
		out = append(out, tb.typ)
	}
	return out
}

// Body is the body matching Type (a *PruneSpec, *DistillSpec, ...), or nil
// when it is not set or Type is unknown.
func (b *StageBody) Body() any {
	for _, tb := range b.bodies() {
		if tb.typ == b.Type {
			return tb.body
		}
	}
	return nil
}

// CheckBody returns an error unless Type is known and exactly its body is
// set: the rule the CRD enforces with CEL, for stages that did not come
// through the API server (tasks, files read without it). field names the
// stage in the message ("spec.stages[0]", "task.stage").
func (b *StageBody) CheckBody(field string) error {
	known, set := false, 0
	for _, tb := range b.bodies() {
		known = known || tb.typ == b.Type
		if tb.body != nil {
			set++
		}
	}
	if !known {
		return fmt.Errorf("%s.type %q is not one of %s", field, b.Type, joinTypes(StageTypes()))
	}
	if set != 1 || b.Body() == nil {
		return fmt.Errorf("%s must set exactly one body, the one matching type %s", field, b.Type)
	}
	return nil
}

func joinTypes(ts []StageType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// Exclusion lists nodes the stage leaves alone.
type Exclusion struct {
	// Nodes by name.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=512
	Nodes []string `json:"nodes,omitempty"`

	// OpTypes by ONNX operator type, e.g. Gemm.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=128
	OpTypes []string `json:"opTypes,omitempty"`
}

// PruneMethod selects a pruning algorithm.
// +kubebuilder:validation:Enum=magnitude;nm;structured;entropy;hessian
type PruneMethod string

const (
	PruneMagnitude  PruneMethod = "magnitude"
	PruneNM         PruneMethod = "nm"
	PruneStructured PruneMethod = "structured"
	PruneEntropy    PruneMethod = "entropy"
	PruneHessian    PruneMethod = "hessian"
)

// PruneScope says where the sparsity budget is spent.
// +kubebuilder:validation:Enum=layer;global;sensitivity
type PruneScope string

const (
	ScopeLayer  PruneScope = "layer"
	ScopeGlobal PruneScope = "global"
	// ScopeSensitivity (structured, entropy) measures how much each group
	// of coupled layers hurts the output at several fractions, then spends
	// the same channel budget where it costs least.
	ScopeSensitivity PruneScope = "sensitivity"
)

// Criterion scores structured units: the l1 or l2 norm of their filters,
// or reconstruction, the share of the next layers' output variance each
// unit carries, measured on the job's dataset (needed then).
// +kubebuilder:validation:Enum=l1;l2;reconstruction
type Criterion string

const (
	CriterionL1             Criterion = "l1"
	CriterionL2             Criterion = "l2"
	CriterionReconstruction Criterion = "reconstruction"
)

// WeightStorage says how pruned weights are written.
// +kubebuilder:validation:Enum=dense;sparse
type WeightStorage string

const (
	StorageDense  WeightStorage = "dense"
	StorageSparse WeightStorage = "sparse"
)

// PruneSpec configures a Prune stage.
// +kubebuilder:validation:XValidation:rule="!(has(self.sparsity) && has(self.pattern))",message="prune: set sparsity or pattern, not both"
// +kubebuilder:validation:XValidation:rule="!has(self.pattern) || self.method in ['nm', 'hessian']",message="prune.pattern is only used by methods nm and hessian"
// +kubebuilder:validation:XValidation:rule="!has(self.keep) || !(has(self.sparsity) || has(self.pattern))",message="prune: set keep or sparsity (or pattern), not more than one"
// +kubebuilder:validation:XValidation:rule="!has(self.scope) || self.scope == 'layer' || self.method in ['magnitude', 'structured', 'entropy']",message="prune.scope global applies to methods magnitude, structured and entropy; hessian and nm work layer by layer"
// +kubebuilder:validation:XValidation:rule="!has(self.scope) || self.scope != 'sensitivity' || self.method in ['structured', 'entropy']",message="prune.scope sensitivity applies to methods structured and entropy"
// +kubebuilder:validation:XValidation:rule="has(self.sparsity) || has(self.keep) || self.method == 'nm' || (self.method == 'hessian' && has(self.pattern))",message="prune.sparsity is required for methods magnitude, structured, entropy and unstructured hessian (or keep, the fraction kept)"
type PruneSpec struct {
	// Method: magnitude, nm, structured, entropy or hessian.
	Method PruneMethod `json:"method"`

	// Sparsity is the fraction of weights (or channels, for structured and
	// entropy) removed, as a decimal string in (0, 1).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) > 0.0 && double(self) < 1.0",message="prune.sparsity must be a decimal string in (0, 1), such as \"0.5\""
	Sparsity string `json:"sparsity,omitempty"`

	// Keep is the fraction of weights (or channels) kept, 1 - sparsity.
	// Set keep or sparsity, not both.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) > 0.0 && double(self) < 1.0",message="prune.keep must be a decimal string in (0, 1), such as \"0.5\""
	Keep string `json:"keep,omitempty"`

	// Pattern N:M keeps N of every M consecutive weights along the input
	// dimension; methods nm (default 2:4) and hessian.
	// +optional
	// +kubebuilder:validation:MaxLength=8
	// +kubebuilder:validation:XValidation:rule="self.matches('^[1-9][0-9]?:[1-9][0-9]?$') && int(self.split(':')[0]) < int(self.split(':')[1])",message="prune.pattern must be N:M with 0 < N < M, such as \"2:4\""
	Pattern string `json:"pattern,omitempty"`

	// Scope: layer prunes every layer to the same sparsity; global ranks
	// all prunable weights (or channel groups) together, so small, sensitive
	// layers keep more; sensitivity (structured and entropy) measures each
	// group's loss before choosing. Unset: global for magnitude, layer for
	// the other methods (hessian and nm work layer by layer).
	// +optional
	Scope PruneScope `json:"scope,omitempty"`

	// Criterion scores channels for structured pruning: l1 or l2, the norm
	// of their filters; reconstruction, the share of the next layers'
	// output variance they carry on the job's dataset (needed then), which
	// compares channels across layers (scope global).
	// +optional
	// +kubebuilder:default=l1
	Criterion Criterion `json:"criterion,omitempty"`

	// Storage: sparse writes pruned weights as ONNX sparse initializers
	// where that is smaller.
	// +optional
	// +kubebuilder:default=dense
	Storage WeightStorage `json:"storage,omitempty"`

	// Exclude leaves these nodes dense.
	// +optional
	Exclude *Exclusion `json:"exclude,omitempty"`

	// MinParams leaves weights with fewer elements than this untouched.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MinParams int64 `json:"minParams,omitempty"`

	// Calibration samples feed entropy, reconstruction and hessian
	// pruning. Hessian needs more samples than its widest layer has inputs
	// (rows of X) for a well-conditioned H.
	// +optional
	// +kubebuilder:default=512
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	CalibrationSamples int32 `json:"calibrationSamples,omitempty"`

	// Dampening is added to the Hessian diagonal, as a fraction of its mean
	// (hessian only).
	// +optional
	// +kubebuilder:default="0.01"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) > 0.0 && double(self) <= 1.0",message="prune.dampening must be a decimal string in (0, 1], such as \"0.01\""
	Dampening string `json:"dampening,omitempty"`

	// Seed breaks ties deterministically.
	// +optional
	Seed int64 `json:"seed,omitempty"`
}

// Optimizer selects the distillation optimizer.
// +kubebuilder:validation:Enum=adam;sgd
type Optimizer string

const (
	OptimizerAdam Optimizer = "adam"
	OptimizerSGD  Optimizer = "sgd"
)

// Schedule selects the learning-rate schedule.
// +kubebuilder:validation:Enum=constant;cosine;step
type Schedule string

const (
	ScheduleConstant Schedule = "constant"
	ScheduleCosine   Schedule = "cosine"
	ScheduleStep     Schedule = "step"
)

// ModelRef points at a model other than the chain's own.
type ModelRef struct {
	// URI of the ONNX model.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self == '' || self.matches('^(s3|gs|azblob|file|mem)://.+')",message="model uri must be a URI with scheme s3, gs, azblob, file or mem"
	URI string `json:"uri,omitempty"`
}

// DistillSpec configures a Distill stage.
type DistillSpec struct {
	// Teacher defaults to spec.source.
	// +optional
	Teacher *ModelRef `json:"teacher,omitempty"`

	// Student defaults to the previous stage's output.
	// +optional
	Student *ModelRef `json:"student,omitempty"`

	// Dataset to train on; defaults to spec.dataset. Evaluation always uses
	// spec.dataset, so a training set here keeps the test set honest.
	// +optional
	Dataset *DatasetSpec `json:"dataset,omitempty"`

	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	Epochs int32 `json:"epochs,omitempty"`

	// +optional
	// +kubebuilder:default=64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65536
	BatchSize int32 `json:"batchSize,omitempty"`

	// MaxSteps caps optimizer steps; 0 means no cap.
	// +optional
	// +kubebuilder:validation:Minimum=0
	MaxSteps int64 `json:"maxSteps,omitempty"`

	// Temperature softens logits: "auto" scales it to the teacher's logit
	// spread, or a positive decimal string such as "4".
	// +optional
	// +kubebuilder:default=auto
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == 'auto' || (self.matches('^[0-9]+([.][0-9]+)?$') && double(self) > 0.0)",message="distill.temperature must be \"auto\" or a positive decimal string, such as \"4\""
	Temperature string `json:"temperature,omitempty"`

	// Alpha weighs the soft (teacher) loss against hard-label cross-entropy.
	// +optional
	// +kubebuilder:default="0.7"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0 && double(self) <= 1.0",message="distill.alpha must be a decimal string in [0, 1], such as \"0.7\""
	Alpha string `json:"alpha,omitempty"`

	// +optional
	// +kubebuilder:default=adam
	Optimizer Optimizer `json:"optimizer,omitempty"`

	// +optional
	// +kubebuilder:default="0.001"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?([eE]-?[0-9]+)?$') && double(self) > 0.0 && double(self) < 10.0",message="distill.learningRate must be a positive decimal string below 10, such as \"0.001\""
	LearningRate string `json:"learningRate,omitempty"`

	// Schedule of the learning rate over the run.
	// +optional
	// +kubebuilder:default=constant
	Schedule Schedule `json:"schedule,omitempty"`

	// Momentum of SGD.
	// +optional
	// +kubebuilder:default="0.9"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0 && double(self) < 1.0",message="distill.momentum must be a decimal string in [0, 1), such as \"0.9\""
	Momentum string `json:"momentum,omitempty"`

	// WeightDecay is the L2 penalty.
	// +optional
	// +kubebuilder:default="0"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?([eE]-?[0-9]+)?$') && double(self) >= 0.0 && double(self) < 1.0",message="distill.weightDecay must be a decimal string in [0, 1), such as \"0.0001\""
	WeightDecay string `json:"weightDecay,omitempty"`

	// +optional
	Seed int64 `json:"seed,omitempty"`
}

// QuantizeMethod selects a quantization algorithm.
// +kubebuilder:validation:Enum=dynamic;static;weightOnly;fp16
type QuantizeMethod string

const (
	QuantizeDynamic    QuantizeMethod = "dynamic"
	QuantizeStatic     QuantizeMethod = "static"
	QuantizeWeightOnly QuantizeMethod = "weightOnly"
	QuantizeFP16       QuantizeMethod = "fp16"
)

// QuantizeFormat selects how weight-only quantized weights are stored.
// +kubebuilder:validation:Enum=qdq;matmulnbits
type QuantizeFormat string

const (
	FormatQDQ         QuantizeFormat = "qdq"
	FormatMatMulNBits QuantizeFormat = "matmulnbits"
)

// QuantizeAlgorithm selects how weight-only quantization rounds weights.
// +kubebuilder:validation:Enum=rtn;gptq
type QuantizeAlgorithm string

const (
	// AlgorithmRTN rounds each weight to the nearest level of its block.
	AlgorithmRTN QuantizeAlgorithm = "rtn"
	// AlgorithmGPTQ rounds a layer's input features in order and moves
	// each rounding error onto the features not yet rounded, through the
	// inverse Hessian of the layer's inputs on the dataset (GPTQ).
	AlgorithmGPTQ QuantizeAlgorithm = "gptq"
)

// SensitiveLayers says what 4-bit weight-only quantization does with the
// weights whose 4-bit error costs the most output fidelity.
// +kubebuilder:validation:Enum=int8;float;int4
type SensitiveLayers string

const (
	// SensitiveInt8 keeps the fewest of them at 8 bits that hold the
	// output cosine at 0.99 (the default).
	SensitiveInt8 SensitiveLayers = "int8"
	// SensitiveFloat keeps them in float.
	SensitiveFloat SensitiveLayers = "float"
	// SensitiveInt4 quantizes them to 4 bits like the others.
	SensitiveInt4 SensitiveLayers = "int4"
)

// CalibrationMethod selects how activation ranges are chosen.
// +kubebuilder:validation:Enum=minmax;percentile;entropy
type CalibrationMethod string

const (
	CalibrationMinMax     CalibrationMethod = "minmax"
	CalibrationPercentile CalibrationMethod = "percentile"
	CalibrationEntropy    CalibrationMethod = "entropy"
)

// ActivationType is the integer type of quantized activations.
// +kubebuilder:validation:Enum=uint8;int8
type ActivationType string

const (
	ActivationUInt8 ActivationType = "uint8"
	ActivationInt8  ActivationType = "int8"
)

// IOType is the element type of a converted model's inputs and outputs.
// +kubebuilder:validation:Enum=float32;float16
type IOType string

const (
	IOFloat32 IOType = "float32"
	IOFloat16 IOType = "float16"
)

// Calibration configures static quantization's activation ranges.
type Calibration struct {
	// +optional
	// +kubebuilder:default=minmax
	Method CalibrationMethod `json:"method,omitempty"`

	// Samples from the dataset used to calibrate.
	// +optional
	// +kubebuilder:default=256
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	Samples int32 `json:"samples,omitempty"`

	// Percentile of absolute activations kept (method percentile).
	// +optional
	// +kubebuilder:default="99.99"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 50.0 && double(self) <= 100.0",message="calibration.percentile must be a decimal string in [50, 100], such as \"99.99\""
	Percentile string `json:"percentile,omitempty"`
}

// The words smoothQuant.alpha takes beside a number.
const (
	SmoothQuantAuto = "auto"
	SmoothQuantOff  = "off"
)

// SmoothQuant configures static quantization's migration of activation
// outliers into weights.
type SmoothQuant struct {
	// Alpha is how much of each input channel's range moves into the
	// weight, in (0, 1]: 0.5 balances both (the paper's default); larger
	// values suit models with larger outliers. "auto" searches 0.1 to 1.0
	// for each activation, keeping the alpha (or no migration) of the
	// least quantized error of its layers on calibration rows. "off"
	// migrates nothing, the same as no smoothQuant: it lets
	// spec.variants compare a job with and without.
	// +optional
	// +kubebuilder:default="0.5"
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self == 'auto' || self == 'off' || (self.matches('^[0-9]+([.][0-9]+)?$') && double(self) > 0.0 && double(self) <= 1.0)",message="quantize.smoothQuant.alpha must be a decimal string in (0, 1], such as \"0.5\", or auto or off"
	Alpha string `json:"alpha,omitempty"`
}

// QuantizeSpec configures a Quantize stage.
// +kubebuilder:validation:XValidation:rule="self.bits == 8 || self.method == 'weightOnly'",message="quantize.bits 4 is only supported with method weightOnly"
// +kubebuilder:validation:XValidation:rule="self.format == 'qdq' || self.method == 'weightOnly'",message="quantize.format matmulnbits is only supported with method weightOnly"
// +kubebuilder:validation:XValidation:rule="!has(self.sensitiveLayers) || (self.method == 'weightOnly' && self.bits == 4)",message="quantize.sensitiveLayers applies to method weightOnly with bits 4"
// +kubebuilder:validation:XValidation:rule="self.algorithm == 'rtn' || self.method == 'weightOnly'",message="quantize.algorithm gptq is only supported with method weightOnly"
// +kubebuilder:validation:XValidation:rule="!has(self.smoothQuant) || self.method == 'static'",message="quantize.smoothQuant is only supported with method static"
type QuantizeSpec struct {
	// Method: dynamic, static, weightOnly or fp16.
	Method QuantizeMethod `json:"method"`

	// Bits of quantized weights: 8, or 4 with weightOnly.
	// +optional
	// +kubebuilder:default=8
	// +kubebuilder:validation:XValidation:rule="self in [4, 8]",message="quantize.bits must be 4 or 8"
	Bits int32 `json:"bits,omitempty"`

	// PerChannel quantizes weights with one scale per output channel.
	// +optional
	// +kubebuilder:default=true
	PerChannel *bool `json:"perChannel,omitempty"`

	// Symmetric weight quantization (no zero point of their own). Default
	// true, except with method weightOnly: false, a zero point per block,
	// whose levels then span each block's own range (at 4 bits, about a
	// fifth less error on trained weights than symmetric blocks).
	// +optional
	Symmetric *bool `json:"symmetric,omitempty"`

	// ActivationType of static quantization's activations.
	// +optional
	// +kubebuilder:default=uint8
	ActivationType ActivationType `json:"activationType,omitempty"`

	// BlockSize of weight-only quantization blocks: a power of two, 16 to 256.
	// +optional
	// +kubebuilder:default=32
	// +kubebuilder:validation:XValidation:rule="self in [16, 32, 64, 128, 256]",message="quantize.blockSize must be a power of two from 16 to 256"
	BlockSize int32 `json:"blockSize,omitempty"`

	// Format of weight-only weights: qdq (DequantizeLinear with block_size,
	// opset 21) or matmulnbits (com.microsoft MatMulNBits).
	// +optional
	// +kubebuilder:default=qdq
	Format QuantizeFormat `json:"format,omitempty"`

	// Algorithm of weight-only quantization: rtn rounds each weight to
	// nearest; gptq rounds the MatMul and Gemm weights so that the
	// layer's output on the dataset (calibration.samples of it) stays
	// closest to the float one, moving each weight's rounding error onto
	// the weights not yet rounded through the inverse Hessian of the
	// layer's inputs (GPTQ); the other weights are rounded to nearest.
	// gptq needs spec.dataset. Only with method weightOnly.
	// +optional
	// +kubebuilder:default=rtn
	Algorithm QuantizeAlgorithm `json:"algorithm,omitempty"`

	// SensitiveLayers says what 4-bit weight-only quantization does with
	// the weights whose 4-bit error costs the most output fidelity (a
	// CNN's first convolution, a classifier), measured on the dataset
	// (on synthesized inputs without one): int8 keeps the fewest of them,
	// most sensitive first, at 8 bits that hold the output cosine at 0.99
	// (or near what 8 bits everywhere allow); float keeps them in float;
	// int4 quantizes them too. The stage reports the weights kept and
	// warns. Default int8; only with method weightOnly and bits 4.
	// +optional
	SensitiveLayers SensitiveLayers `json:"sensitiveLayers,omitempty"`

	// Calibration of static quantization.
	// +optional
	// +kubebuilder:default={}
	Calibration Calibration `json:"calibration,omitempty"`

	// SmoothQuant migrates the outlier channels of the inputs of MatMul
	// and Gemm layers into their weights before static calibration
	// (SmoothQuant): per input channel j, s_j = max|X_j|^alpha /
	// max|W_j|^(1-alpha) on the dataset; the input is divided by s
	// (folded into the LayerNormalization or Mul that makes it when that
	// is exact, else through an inserted Mul) and the weight multiplied
	// by it, so the float model computes the same. For transformers,
	// whose layer-norm outputs carry a few channels 20-100x the others.
	// The stage's result lists where it applied and where not, and why.
	// Only with method static.
	// +optional
	SmoothQuant *SmoothQuant `json:"smoothQuant,omitempty"`

	// IOType of an fp16 model's inputs and outputs.
	// +optional
	// +kubebuilder:default=float32
	IOType IOType `json:"ioType,omitempty"`

	// Exclude keeps these nodes in float.
	// +optional
	Exclude *Exclusion `json:"exclude,omitempty"`
}

// CustomSpec runs a user image that follows the runner's task/result
// contract. A cluster runs it only when its admin enabled Custom stages
// and the image is on the admin's allowlist; `kompress run --allow-exec`
// runs its command locally.
// +kubebuilder:validation:XValidation:rule="!has(self.env) || self.env.all(e, !(e.name in ['KOMPRESS_TASK', 'KOMPRESS_MEMORY_LIMIT', 'KOMPRESS_NODE_NAME', 'GOMAXPROCS', 'POD_NAME']))",message="custom.env must not set KOMPRESS_TASK, KOMPRESS_MEMORY_LIMIT, KOMPRESS_NODE_NAME, GOMAXPROCS or POD_NAME: the controller sets them"
type CustomSpec struct {
	// Image to run: in a cluster, it must match the admin's allowlist of
	// image prefixes or digests (--custom-stage-images).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	Image string `json:"image"`

	// Command overrides the image's entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command,omitempty"`

	// Args to the command.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// Env adds plain variables (the task arrives in KOMPRESS_TASK).
	// Values only: there is no valueFrom, so a CompressionJob cannot
	// expose a Secret or ConfigMap of the namespace to its image; storage
	// credentials come from spec.storage.secretRef.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []CustomEnvVar `json:"env,omitempty"`
}

// CustomEnvVar is an environment variable of a Custom stage: a name and a
// plain value (the shape of a pod's env entry, without valueFrom).
type CustomEnvVar struct {
	// Name of the variable.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z][-._a-zA-Z0-9]*$`
	Name string `json:"name"`

	// Value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=8192
	Value string `json:"value,omitempty"`
}
