package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CompressionJobSpec declares a source model, where results go, and the
// ordered stages that compress it.
// +kubebuilder:validation:XValidation:rule="self.output.uri != self.source.uri",message="spec.output.uri must differ from spec.source.uri: artifacts are written under the output prefix and the source is never overwritten"
// +kubebuilder:validation:XValidation:rule="!has(self.variants) || self.variants.parameters.all(p, self.stages.exists(s, s.name == p.stage))",message="spec.variants.parameters[].stage must name a stage of spec.stages",messageExpression="'spec.variants.parameters[].stage must name a stage of spec.stages: ' + self.variants.parameters.map(p, p.stage).filter(x, !self.stages.exists(s, s.name == x))[0] + ' is not one'"
// +kubebuilder:validation:XValidation:rule="!has(self.variants) || self.variants.parameters.all(p, self.stages.all(s, s.name != p.stage || !(s.type in {'Prune': ['method', 'sparsity', 'keep', 'pattern', 'scope', 'criterion', 'storage', 'minParams', 'calibrationSamples', 'dampening', 'seed'], 'Distill': ['teacher.uri', 'student.uri', 'dataset.uri', 'dataset.format', 'dataset.sha256', 'epochs', 'batchSize', 'maxSteps', 'temperature', 'alpha', 'optimizer', 'learningRate', 'schedule', 'momentum', 'weightDecay', 'seed'], 'Quantize': ['method', 'bits', 'perChannel', 'symmetric', 'activationType', 'blockSize', 'format', 'algorithm', 'sensitiveLayers', 'calibration.method', 'calibration.samples', 'calibration.percentile', 'smoothQuant.alpha', 'ioType'], 'Custom': ['image']}) || p.field in {'Prune': ['method', 'sparsity', 'keep', 'pattern', 'scope', 'criterion', 'storage', 'minParams', 'calibrationSamples', 'dampening', 'seed'], 'Distill': ['teacher.uri', 'student.uri', 'dataset.uri', 'dataset.format', 'dataset.sha256', 'epochs', 'batchSize', 'maxSteps', 'temperature', 'alpha', 'optimizer', 'learningRate', 'schedule', 'momentum', 'weightDecay', 'seed'], 'Quantize': ['method', 'bits', 'perChannel', 'symmetric', 'activationType', 'blockSize', 'format', 'algorithm', 'sensitiveLayers', 'calibration.method', 'calibration.samples', 'calibration.percentile', 'smoothQuant.alpha', 'ioType'], 'Custom': ['image']}[s.type]))",message="spec.variants.parameters[].field must be a variable field of the body of the stage it names",messageExpression="'spec.variants.parameters[].field must be a variable field of the body of the stage it names: ' + self.variants.parameters.map(p, self.stages.exists(s, s.name == p.stage && s.type in {'Prune': ['method', 'sparsity', 'keep', 'pattern', 'scope', 'criterion', 'storage', 'minParams', 'calibrationSamples', 'dampening', 'seed'], 'Distill': ['teacher.uri', 'student.uri', 'dataset.uri', 'dataset.format', 'dataset.sha256', 'epochs', 'batchSize', 'maxSteps', 'temperature', 'alpha', 'optimizer', 'learningRate', 'schedule', 'momentum', 'weightDecay', 'seed'], 'Quantize': ['method', 'bits', 'perChannel', 'symmetric', 'activationType', 'blockSize', 'format', 'algorithm', 'sensitiveLayers', 'calibration.method', 'calibration.samples', 'calibration.percentile', 'smoothQuant.alpha', 'ioType'], 'Custom': ['image']} && !(p.field in {'Prune': ['method', 'sparsity', 'keep', 'pattern', 'scope', 'criterion', 'storage', 'minParams', 'calibrationSamples', 'dampening', 'seed'], 'Distill': ['teacher.uri', 'student.uri', 'dataset.uri', 'dataset.format', 'dataset.sha256', 'epochs', 'batchSize', 'maxSteps', 'temperature', 'alpha', 'optimizer', 'learningRate', 'schedule', 'momentum', 'weightDecay', 'seed'], 'Quantize': ['method', 'bits', 'perChannel', 'symmetric', 'activationType', 'blockSize', 'format', 'algorithm', 'sensitiveLayers', 'calibration.method', 'calibration.samples', 'calibration.percentile', 'smoothQuant.alpha', 'ioType'], 'Custom': ['image']}[s.type])) ? 'stage ' + p.stage + ' has no variable field ' + p.field : '-').filter(m, m != '-')[0]"
// +kubebuilder:validation:XValidation:rule="!has(self.parallelism) || self.parallelism.shards == 1 || has(self.dataset)",message="spec.parallelism.shards above 1 needs spec.dataset: the shards are cut from the dataset"
type CompressionJobSpec struct {
	// Source is the ONNX model to compress.
	Source ModelSource `json:"source"`

	// Output is the prefix under which every stage writes its artifact,
	// as <output>/<cache-key>/model.onnx with result.json beside it.
	Output OutputSpec `json:"output"`

	// Storage says how runner pods authenticate to object storage.
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`

	// Dataset feeds calibration, evaluation and distillation.
	// +optional
	Dataset *DatasetSpec `json:"dataset,omitempty"`

	// Stages run in order; each reads the previous stage's output.
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=16
	Stages []Stage `json:"stages"`

	// Variants runs the chain once per combination of values of some
	// stage fields and selects one result (see VariantsSpec). Without
	// it, the chain runs once.
	// +optional
	Variants *VariantsSpec `json:"variants,omitempty"`

	// Parallelism spreads each stage's passes over the dataset across
	// pods (see ParallelismSpec). Without it, one pod per stage.
	// +optional
	Parallelism *ParallelismSpec `json:"parallelism,omitempty"`

	// Evaluation says how every stage output is measured.
	// +optional
	// +kubebuilder:default={}
	Evaluation EvaluationSpec `json:"evaluation,omitempty"`

	// Acceptance holds quality gates the final model must pass.
	// +optional
	Acceptance *AcceptanceSpec `json:"acceptance,omitempty"`

	// Scheduling holds defaults for every stage's pod; a stage's own
	// fields override them.
	// +optional
	Scheduling *SchedulingSpec `json:"scheduling,omitempty"`

	// Suspend stops creating stage Jobs and suspends the running one.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// ActiveDeadlineSeconds bounds the whole run; past it the job fails
	// with reason DeadlineExceeded.
	// +optional
	// +kubebuilder:validation:Minimum=1
	ActiveDeadlineSeconds *int64 `json:"activeDeadlineSeconds,omitempty"`

	// TTLSecondsAfterFinished is copied to every stage Job, so finished
	// Jobs and their pods are garbage-collected after it.
	// +optional
	// +kubebuilder:validation:Minimum=0
	TTLSecondsAfterFinished *int32 `json:"ttlSecondsAfterFinished,omitempty"`
}

// ModelSource is where the model to compress lives.
type ModelSource struct {
	// URI of the ONNX model: s3://, gs://, azblob://, file:// or mem://.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(s3|gs|azblob|file|mem)://.+')",message="spec.source.uri must be a URI with scheme s3, gs, azblob, file or mem, such as s3://models/resnet.onnx"
	URI string `json:"uri"`

	// SHA256 pins the source's content: the runner refuses a model whose
	// digest differs. Pinned sources make cache keys content-addressed.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	// +kubebuilder:validation:XValidation:rule="self.matches('^(sha256:)?[0-9a-f]{64}$')",message="spec.source.sha256 must be 64 lowercase hex digits, optionally prefixed by sha256:"
	SHA256 string `json:"sha256,omitempty"`
}

// ArtifactPolicy says what happens to intermediate artifacts when the
// CompressionJob is deleted.
// +kubebuilder:validation:Enum=Retain;Delete
type ArtifactPolicy string

const (
	ArtifactPolicyRetain ArtifactPolicy = "Retain"
	ArtifactPolicyDelete ArtifactPolicy = "Delete"
)

// OutputSpec is where artifacts are written.
type OutputSpec struct {
	// URI prefix for artifacts: s3://, gs://, azblob://, file:// or mem://.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(s3|gs|azblob|file|mem)://.+')",message="spec.output.uri must be a URI with scheme s3, gs, azblob, file or mem, such as s3://models/compressed"
	URI string `json:"uri"`

	// IntermediateArtifacts: Retain keeps every stage's artifact; Delete
	// removes all but the final one when the CompressionJob is deleted.
	// The final model is never deleted.
	// +optional
	// +kubebuilder:default=Retain
	IntermediateArtifacts ArtifactPolicy `json:"intermediateArtifacts,omitempty"`
}

// StorageSpec says how runner pods reach object storage. Secret values never
// appear in the spec.
type StorageSpec struct {
	// SecretRef names a Secret in the job's namespace whose keys become the
	// runner's environment (for example AWS_ACCESS_KEY_ID,
	// AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_KEY), one SecretKeyRef each.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`

	// ServiceAccountName runs the stage pods as this ServiceAccount, for
	// workload identity. Defaults to the runner ServiceAccount of the chart;
	// another must be on the cluster admin's list
	// (--allowed-service-accounts). Its token is never mounted.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// DatasetFormat is the encoding of a dataset.
// +kubebuilder:validation:Enum=npz
type DatasetFormat string

const DatasetFormatNPZ DatasetFormat = "npz"

// DatasetSpec is a dataset in object storage.
type DatasetSpec struct {
	// URI of the dataset: an .npz with array x (inputs) and optional y (labels).
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^(s3|gs|azblob|file|mem)://.+')",message="dataset uri must be a URI with scheme s3, gs, azblob, file or mem, such as s3://data/mnist.npz"
	URI string `json:"uri"`

	// Format of the file.
	// +optional
	// +kubebuilder:default=npz
	Format DatasetFormat `json:"format,omitempty"`

	// SHA256 pins the dataset's content.
	// +optional
	// +kubebuilder:validation:MaxLength=71
	// +kubebuilder:validation:XValidation:rule="self.matches('^(sha256:)?[0-9a-f]{64}$')",message="dataset sha256 must be 64 lowercase hex digits, optionally prefixed by sha256:"
	SHA256 string `json:"sha256,omitempty"`
}

// EvaluationSpec says how each stage output is measured.
type EvaluationSpec struct {
	// Samples caps how many dataset samples are scored; 0 scores them all.
	// +optional
	// +kubebuilder:validation:Minimum=0
	Samples int32 `json:"samples,omitempty"`

	// LatencyBatchSize is the batch size latency is measured at.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	LatencyBatchSize int32 `json:"latencyBatchSize,omitempty"`

	// LatencyRuns is how many timed runs follow the warm-up runs.
	// +optional
	// +kubebuilder:default=50
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	LatencyRuns int32 `json:"latencyRuns,omitempty"`

	// Inputs say how inputs are made up when the job has no dataset: for
	// evaluation, and for methods that run the model without data (the
	// probe of structured pruning). Inputs not listed take their declared
	// shape, dynamic dimensions 320, floats uniform in [0, 1) and
	// integers 0. Names are checked against the model when a stage runs:
	// a name that is not an input of the model fails the stage.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=32
	Inputs []EvaluationInput `json:"inputs,omitempty"`
}

// EvaluationInput says how one model input is made up.
// +kubebuilder:validation:XValidation:rule="!(has(self.value) && has(self.range))",message="spec.evaluation.inputs[]: set value (a constant) or range (random values), not both"
type EvaluationInput struct {
	// Name of the model input.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name"`

	// Shape of one sample, the batch excluded ([512] for audio frames
	// of input [N, 512], [3, 48, 320] for images of input [N, 3, H, W]).
	// An input fed whole with every batch gives its whole shape: the
	// full rank when the model fixes its first dimension (a recurrent
	// state [2, 1, 128]), [] (or nothing) for a scalar such as a sample
	// rate. Empty: the declared shape, dynamic dimensions 320.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	// +kubebuilder:validation:items:Minimum=1
	// +kubebuilder:validation:items:Maximum=1048576
	Shape []int64 `json:"shape,omitempty"`

	// Value fills every element: a decimal string ("16000", "0",
	// "-0.5"); integer inputs take whole numbers.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?[0-9]+([.][0-9]+)?$')",message="spec.evaluation.inputs[].value must be a decimal string, such as \"16000\" or \"-0.5\""
	Value string `json:"value,omitempty"`

	// Range draws values uniformly from [low, high), two decimal strings
	// (["-1", "1"] for audio samples; whole numbers for integer inputs,
	// such as token ids in ["0", "30522"]).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MinItems=2
	// +kubebuilder:validation:MaxItems=2
	// +kubebuilder:validation:items:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.all(v, v.matches('^-?[0-9]+([.][0-9]+)?$')) && double(self[0]) < double(self[1])",message="spec.evaluation.inputs[].range must be two decimal strings [low, high) with low < high, such as [\"-1\", \"1\"]"
	Range []string `json:"range,omitempty"`
}

// AcceptanceSpec holds quality gates on the final model's metrics.
type AcceptanceSpec struct {
	// MaxAccuracyDrop is the largest accuracy loss against the source model
	// (a fraction: "0.005" is half a point).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0 && double(self) < 1.0",message="spec.acceptance.maxAccuracyDrop must be a decimal string in [0, 1), such as \"0.005\""
	MaxAccuracyDrop string `json:"maxAccuracyDrop,omitempty"`

	// MinTop1Agreement is the smallest fraction of samples (of positions,
	// for sequence outputs [N, T, C]) whose top-1 class matches the
	// source model's, checked on every output the metrics name. Not
	// measured on outputs of one value per sample.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0 && double(self) <= 1.0",message="spec.acceptance.minTop1Agreement must be a decimal string in [0, 1], such as \"0.99\""
	MinTop1Agreement string `json:"minTop1Agreement,omitempty"`

	// MinCosine is the smallest mean cosine similarity between the model's
	// outputs and the source model's, checked on every output the metrics
	// name. Not measured on outputs of one value per sample.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0 && double(self) <= 1.0",message="spec.acceptance.minCosine must be a decimal string in [0, 1], such as \"0.99\""
	MinCosine string `json:"minCosine,omitempty"`

	// MaxRelativeError is the largest relative error ‖y−ŷ‖/‖y‖ of the
	// model's outputs against the source model's (a fraction: "0.01" is
	// 1%), checked on every output the metrics name. The gate for models
	// whose outputs are values (regression, scores) rather than classes.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+([.][0-9]+)?$') && double(self) >= 0.0",message="spec.acceptance.maxRelativeError must be a non-negative decimal string, such as \"0.01\""
	MaxRelativeError string `json:"maxRelativeError,omitempty"`

	// MinSnrDb is the smallest signal-to-noise ratio of the model's
	// outputs against the source model's, 10·log10(Σy²/Σ(y−ŷ)²) in
	// decibels (a decimal string: "30" is an error 1000 times weaker
	// than the signal), checked on every output the metrics name.
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^-?[0-9]+([.][0-9]+)?$')",message="spec.acceptance.minSnrDb must be a decimal string in decibels, such as \"30\" or \"-3.5\""
	MinSnrDb string `json:"minSnrDb,omitempty"`

	// MaxBytes is the largest acceptable model file.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxBytes *int64 `json:"maxBytes,omitempty"`

	// MaxLatency is the largest acceptable p95 latency at the evaluation
	// batch size, measured on the node that ran the stage (e.g. "20ms").
	// A Go duration: numbers with units ns, us, ms, s, m or h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$') && duration(self) > duration('0s')",message="spec.acceptance.maxLatency must be a positive duration such as \"20ms\" or \"1.5s\" (units ns, us, ms, s, m, h)"
	MaxLatency *metav1.Duration `json:"maxLatency,omitempty"`
}

// SchedulingSpec holds pod placement defaults for every stage.
type SchedulingSpec struct {
	// NodeSelector for stage pods (the node pool they land on), added to
	// the manager's own: a job may add keys, not change the admin's.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, k.size() <= 317 && self[k].size() <= 63)",message="spec.scheduling.nodeSelector keys must be label keys (at most 317 characters) and values label values (at most 63 characters)"
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations for stage pods, added to the manager's own. Tolerations
	// of the control plane's taints (and a key-less Exists, which
	// tolerates every taint) are refused.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`

	// Affinity for stage pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// PriorityClassName for stage pods.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// QueueName is copied to every stage Job as the kueue.x-k8s.io/queue-name
	// label; Kueue then decides when each Job starts.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	QueueName string `json:"queueName,omitempty"`

	// Resources are the default requests and limits of a stage pod.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// CompressionJob compresses an ONNX model through an ordered chain of
// pruning, distillation and quantization stages.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cpj,categories=ml
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Stage",type=string,JSONPath=`.status.currentStage`
// +kubebuilder:printcolumn:name="Progress",type=string,JSONPath=`.status.progress`
// +kubebuilder:printcolumn:name="Size",type=integer,JSONPath=`.status.output.sizeBytes`,priority=1
// +kubebuilder:printcolumn:name="Digest",type=string,JSONPath=`.status.output.digest`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.size() <= 63",message="metadata.name must be at most 63 characters: it is the kompress.dev/job label value of every stage Job and pod"
type CompressionJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec CompressionJobSpec `json:"spec,omitempty"`
	// Status is the observed state of the CompressionJob. It defaults to
	// observedGeneration 0, so one the controller has not acted on yet reads
	// as in progress to kstatus (Flux, kpt, kubectl), not as current.
	// +kubebuilder:default={observedGeneration: 0}
	Status CompressionJobStatus `json:"status,omitempty"`
}

// CompressionJobList is a list of CompressionJobs.
// +kubebuilder:object:root=true
type CompressionJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CompressionJob `json:"items"`
}

func init() {
	SchemeBuilder.Register(&CompressionJob{}, &CompressionJobList{})
}
