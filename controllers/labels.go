package controllers

import "github.com/kompress/kompress/pipeline"

// Labels and annotations the controller puts on stage Jobs and their pods.
const (
	// LabelJob is the CompressionJob's name, on Jobs and pods; the manager
	// caches only Jobs and pods that carry it.
	LabelJob = "kompress.dev/job"
	// LabelStage is the stage's name.
	LabelStage = "kompress.dev/stage"
	// LabelStageIndex is the stage's index in the chain, from 0.
	LabelStageIndex = "kompress.dev/stage-index"
	// LabelQueueName hands the Job to Kueue.
	LabelQueueName = "kueue.x-k8s.io/queue-name"

	// AnnotationCacheKey is the stage's full cache key (the Job name holds
	// only its first hex digits).
	AnnotationCacheKey = "kompress.dev/cache-key"
	// AnnotationRun is the run hash (status.runHash) of the run that
	// created the Job.
	AnnotationRun = "kompress.dev/run"
	// AnnotationTemplateHash identifies the pod template the Job was
	// created with and its retry, deadline and queue settings, so a later
	// run can tell whether an unfinished Job still matches what it would
	// create.
	AnnotationTemplateHash = "kompress.dev/template-hash"

	// ContainerName is the stage container, named in the podFailurePolicy.
	ContainerName = "runner"

	// jobNameLabel is set by the Job controller on the pods it creates.
	jobNameLabel = "batch.kubernetes.io/job-name"
)

// Environment variables of the stage container.
const (
	EnvTask        = pipeline.TaskEnv
	EnvMemoryLimit = "KOMPRESS_MEMORY_LIMIT"
	EnvNodeName    = "KOMPRESS_NODE_NAME"
	EnvGOMAXPROCS  = "GOMAXPROCS"
	EnvPodName     = "POD_NAME"
)

// reservedEnv are the variables the controller sets; a Secret key of the
// same name is not exposed (the CRD rejects them in custom.env).
var reservedEnv = map[string]bool{
	EnvTask: true, EnvMemoryLimit: true, EnvNodeName: true, EnvGOMAXPROCS: true, EnvPodName: true,
}
