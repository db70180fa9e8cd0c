package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types, with kstatus polarity: Ready is normal-true, Reconciling
// and Stalled are abnormal-true.
const (
	ConditionReady       = "Ready"
	ConditionReconciling = "Reconciling"
	ConditionStalled     = "Stalled"
	ConditionSuspended   = "Suspended"
)

// Condition reasons.
const (
	ReasonSucceeded = "Succeeded"
	// ReasonSucceededWithWarnings: a stage wrote its model but fell short
	// of what it was asked (weights left out of the requested sparsity or
	// bit-width); its message says where.
	ReasonSucceededWithWarnings = "SucceededWithWarnings"
	ReasonRunning               = "Running"
	ReasonPending               = "Pending"
	ReasonSuspended             = "Suspended"
	ReasonAwaitingAdmission     = "AwaitingAdmission"
	ReasonUnschedulable         = "Unschedulable"
	ReasonBackoffLimitExceeded  = "BackoffLimitExceeded"
	ReasonDeadlineExceeded      = "DeadlineExceeded"
	ReasonInvalidResult         = "InvalidResult"
	ReasonStageFailed           = "StageFailed"
	ReasonBadInput              = "BadInput"
	ReasonSecretNotFound        = "SecretNotFound"
	// ReasonServiceAccountNotFound: the ServiceAccount stage pods run as
	// does not exist in the job's namespace.
	ReasonServiceAccountNotFound = "ServiceAccountNotFound"
	ReasonJobCreateFailed        = "JobCreateFailed"
	ReasonQualityGateFailed      = "QualityGateFailed"
	ReasonResumed                = "Resumed"
	// ReasonInvalidVariants: a variant of spec.variants is not a valid
	// spec (a value its field's own rules refuse); no Job is created.
	ReasonInvalidVariants = "InvalidVariants"
	// ReasonVariantsUnchecked: the API server forbids the dry-run creates
	// that check the variants (a used-up ResourceQuota on
	// CompressionJobs, a webhook); retried, no Job is created meanwhile.
	ReasonVariantsUnchecked = "VariantsUnchecked"
)

// StageState is where a stage is in its life.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Cached;Suspended
type StageState string

const (
	StagePending   StageState = "Pending"
	StageRunning   StageState = "Running"
	StageSucceeded StageState = "Succeeded"
	StageFailed    StageState = "Failed"
	// StageCached: an earlier run with the same cache key produced the result.
	StageCached    StageState = "Cached"
	StageSuspended StageState = "Suspended"
)

// Artifact is a model written by a stage.
type Artifact struct {
	// URI of the model.
	URI string `json:"uri"`
	// Digest of the model, sha256:<hex>: of the model file, or, for a
	// model with external data (files), of its manifest: every file's
	// name, size and digest, the model file first (see files).
	// +optional
	Digest string `json:"digest,omitempty"`
	// SizeBytes of the model: every file's bytes.
	// +optional
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// Files of a model written with external data: the model file, then
	// its data files, each beside the model (names relative to its
	// folder). Empty for a model in one file.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=16
	Files []ArtifactFile `json:"files,omitempty"`
	// Metrics measured by the runner, as decimal strings.
	// +optional
	Metrics map[string]string `json:"metrics,omitempty"`
}

// ArtifactFile is one file of a model written with external data.
type ArtifactFile struct {
	// Name of the file, relative to the model's folder.
	Name string `json:"name"`
	// Digest of the file, sha256:<hex>.
	Digest string `json:"digest"`
	// SizeBytes of the file.
	SizeBytes int64 `json:"sizeBytes"`
}

// StageStatus is the observed state of one stage.
type StageStatus struct {
	// Name of the stage.
	Name string `json:"name"`
	// JobName of the batch/v1 Job running the stage.
	// +optional
	JobName string `json:"jobName,omitempty"`
	// CacheKey addresses the stage's work: same input, spec, dataset and
	// runner version give the same key and reuse the artifact.
	// +optional
	CacheKey string `json:"cacheKey,omitempty"`
	// ContentKey, when set, is the key the stage's artifacts live under
	// instead of CacheKey: the stage reads a source or dataset not pinned
	// by sha256, so its runner keyed the work by the digests it read.
	// +optional
	ContentKey string `json:"contentKey,omitempty"`
	// State of the stage.
	State StageState `json:"state"`
	// Attempts counts pods started for the stage.
	// +optional
	Attempts int32 `json:"attempts,omitempty"`
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
	// Reason is a CamelCase word for the state.
	// +optional
	Reason string `json:"reason,omitempty"`
	// Message is for humans.
	// +optional
	Message string `json:"message,omitempty"`
	// Output written by the stage.
	// +optional
	Output *Artifact `json:"output,omitempty"`
}

// CompressionJobStatus is the observed state of a CompressionJob.
type CompressionJobStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready, Reconciling, Stalled, Suspended.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// RunHash identifies the spec the current run executes (spec.suspend
	// aside): a spec with another hash starts a new run, in which stages
	// whose cache key is unchanged reuse their earlier output (Cached).
	// +optional
	RunHash string `json:"runHash,omitempty"`

	// StartTime of the current run.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// CompletionTime of the current run.
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// CurrentStage is the name of the stage running, or the one that failed.
	// +optional
	CurrentStage string `json:"currentStage,omitempty"`

	// Progress is "<stages done>/<stages>".
	// +optional
	Progress string `json:"progress,omitempty"`

	// Stages reports every stage of the current run, in order.
	// +optional
	// +listType=map
	// +listMapKey=name
	Stages []StageStatus `json:"stages,omitempty"`

	// Output is the final model, once the last stage succeeded; with
	// spec.variants, the selected variant's.
	// +optional
	Output *Artifact `json:"output,omitempty"`

	// Variants reports every variant of spec.variants, in order. With
	// spec.variants, status.stages lists each stage run once, named
	// <stage>/<first variant that runs it>, then the select step.
	// +optional
	// +listType=map
	// +listMapKey=name
	Variants []VariantStatus `json:"variants,omitempty"`

	// Selection is the outcome of the sweep's select step.
	// +optional
	Selection *SelectionStatus `json:"selection,omitempty"`
}
