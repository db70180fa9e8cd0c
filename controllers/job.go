package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// runnerUID is the non-root user of the runner image (distroless nonroot).
const runnerUID = 65532

// defaultBackoffLimit applies when the stage's defaulted field is missing
// (objects created before the CRD had its default).
const defaultBackoffLimit = 2

// StageJob is one stage of a CompressionJob to turn into a batch/v1 Job.
type StageJob struct {
	Owner *v1alpha1.CompressionJob
	Index int
	Task  pipeline.Task
	// RunHash is status.runHash of the run creating the Job.
	RunHash string
	// SecretKeys are the keys of spec.storage.secretRef to expose as env.
	SecretKeys []string
}

// BuildJob renders the stage's Job: deterministic name, controller owner
// reference, labels, the task in KOMPRESS_TASK, credentials as SecretKeyRef
// env vars, merged placement and a locked-down pod. It is a pure function of
// its inputs; the Job is created once and never updated (suspend aside).
func BuildJob(sj StageJob, d StageDefaults) (*batchv1.Job, error) {
	cpj := sj.Owner
	var stage *v1alpha1.Stage
	switch {
	case sj.Task.Select != nil && sj.Index == len(cpj.Spec.Stages):
		// A sweep's select step: the runner image, the job's own
		// placement, no stage of its own.
		stage = &v1alpha1.Stage{Name: pipeline.SelectStep}
	case sj.Index < 0 || sj.Index >= len(cpj.Spec.Stages):
		return nil, fmt.Errorf("stage index %d is outside the %d stages of %s", sj.Index, len(cpj.Spec.Stages), cpj.Name)
	default:
		stage = &cpj.Spec.Stages[sj.Index]
	}
	task := sj.Task
	pods := task.IndexedPods()
	task.Indexed = pods > 1
	taskJSON, err := task.Encode()
	if err != nil {
		return nil, fmt.Errorf("encoding the task of stage %s: %w", stage.Name, err)
	}
	labels := map[string]string{
		LabelJob:        cpj.Name,
		LabelStage:      stage.Name,
		LabelStageIndex: strconv.Itoa(sj.Index),
	}
	pod := podTemplate(cpj, stage, taskJSON, sj.SecretKeys, d)
	pod.Labels = copyMap(labels)
	hash, err := templateHash(cpj, stage, taskJSON, d)
	if err != nil {
		return nil, err
	}

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:      pipeline.JobName(cpj.Name, sj.Index, stage.Name, sj.Task.CacheKey),
			Namespace: cpj.Namespace,
			Labels:    labels,
			Annotations: map[string]string{
				AnnotationCacheKey:     sj.Task.CacheKey,
				AnnotationRun:          sj.RunHash,
				AnnotationTemplateHash: hash,
			},
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(cpj, v1alpha1.GroupVersion.WithKind("CompressionJob")),
			},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(ptr.Deref(stage.BackoffLimit, defaultBackoffLimit)),
			ActiveDeadlineSeconds:   stage.ActiveDeadlineSeconds,
			TTLSecondsAfterFinished: cpj.Spec.TTLSecondsAfterFinished,
			PodFailurePolicy:        podFailurePolicy(),
			Template:                pod,
		},
	}
	if pods > 1 {
		indexed(&job.Spec, pods, ptr.Deref(stage.BackoffLimit, defaultBackoffLimit))
	}
	if q := queueName(cpj); q != "" {
		// Kueue owns spec.suspend from here on: it unsuspends the Job when
		// it admits it, and the controller never does.
		job.Labels[LabelQueueName] = q
		job.Spec.Suspend = ptr.To(true)
	}
	return job, nil
}

// indexed makes the Job an Indexed Job of pods pods, all running at once
// (the indices exchange partial statistics round by round: each waits for
// all the others, so they must run together; Kueue admits the Job's pods
// as one workload, all or none). Each index is retried on its own,
// backoffLimit times (backoffLimitPerIndex: a retried index finds its
// partials in storage and goes on), and the first index out of retries
// fails the Job (maxFailedIndexes 0): the others would only wait for it
// until their deadline.
func indexed(spec *batchv1.JobSpec, pods int, backoffLimit int32) {
	spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	spec.Completions = ptr.To(int32(pods))
	spec.Parallelism = ptr.To(int32(pods))
	spec.BackoffLimit = nil // the API server defaults it to MaxInt32 with backoffLimitPerIndex
	spec.BackoffLimitPerIndex = ptr.To(backoffLimit)
	spec.MaxFailedIndexes = ptr.To[int32](0)
}

func queueName(cpj *v1alpha1.CompressionJob) string {
	if cpj.Spec.Scheduling == nil {
		return ""
	}
	return cpj.Spec.Scheduling.QueueName
}

// podFailurePolicy fails the Job at once on the runner's permanent exit
// codes (retrying a bad input cannot help) and does not count disruptions
// (preemption, node drain) against the backoff limit.
func podFailurePolicy() *batchv1.PodFailurePolicy {
	return &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{
			Action: batchv1.PodFailurePolicyActionFailJob,
			OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
				ContainerName: ptr.To(ContainerName),
				Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
				Values:        append([]int32(nil), pipeline.PermanentExitCodes...),
			},
		},
		{
			Action: batchv1.PodFailurePolicyActionIgnore,
			OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
				{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue},
			},
		},
	}}
}

func podTemplate(cpj *v1alpha1.CompressionJob, stage *v1alpha1.Stage, taskJSON string, secretKeys []string, d StageDefaults) corev1.PodTemplateSpec {
	p := MergePlacement(d, cpj.Spec.Scheduling, stage)
	c := corev1.Container{
		Name:                   ContainerName,
		Image:                  d.RunnerImage,
		ImagePullPolicy:        d.ImagePullPolicy,
		Command:                []string{"kompress", "stage"},
		Env:                    append(baseEnv(taskJSON), secretEnv(cpj, secretKeys)...),
		Resources:              p.Resources,
		TerminationMessagePath: corev1.TerminationMessagePathDefault,
		// A runner (or a Custom image) that dies before writing its
		// result still explains itself: the kubelet takes the tail of
		// its log as the message, which failedStage reports as is.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			RunAsNonRoot:             ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		VolumeMounts: []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}},
	}
	spec := corev1.PodSpec{
		RestartPolicy:      corev1.RestartPolicyNever,
		ServiceAccountName: stageServiceAccount(cpj, d),
		// No stage talks to the Kubernetes API, a Custom image included:
		// whoever may create CompressionJobs gets no token through them.
		AutomountServiceAccountToken: ptr.To(false),
		EnableServiceLinks:           ptr.To(false),
		NodeSelector:                 p.NodeSelector,
		Tolerations:                  p.Tolerations,
		Affinity:                     p.Affinity,
		PriorityClassName:            p.PriorityClassName,
		SecurityContext: &corev1.PodSecurityContext{
			RunAsNonRoot:   ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
	}
	if custom := stage.Custom; custom != nil {
		// A user image (one the admin allows, see Admit): its own
		// entrypoint and non-root user, plain env values only.
		c.Image = custom.Image
		c.ImagePullPolicy = ""
		c.Command = append([]string(nil), custom.Command...)
		c.Args = append([]string(nil), custom.Args...)
		for _, e := range custom.Env {
			c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		}
	} else {
		spec.SecurityContext.RunAsUser = ptr.To[int64](runnerUID)
		spec.SecurityContext.RunAsGroup = ptr.To[int64](runnerUID)
	}
	spec.Containers = []corev1.Container{c}
	boundScratch(&spec)
	return corev1.PodTemplateSpec{Spec: spec}
}

// DefaultEphemeralStorageLimit bounds a stage pod's local disk when
// neither the manager (--stage-ephemeral-storage-limit) nor the job sets
// a limit.
const DefaultEphemeralStorageLimit = "8Gi"

// boundScratch gives the container an ephemeral-storage limit (the
// default when none is set, raised to the request if that is larger) and
// the /tmp emptyDir the same sizeLimit: a stage cannot fill its node's
// disk, and the kubelet evicts it, with a message saying so, if it tries.
func boundScratch(spec *corev1.PodSpec) {
	c := &spec.Containers[0]
	lim, ok := c.Resources.Limits[corev1.ResourceEphemeralStorage]
	if !ok {
		lim = resource.MustParse(DefaultEphemeralStorageLimit)
		if req, ok := c.Resources.Requests[corev1.ResourceEphemeralStorage]; ok && req.Cmp(lim) > 0 {
			lim = req.DeepCopy()
		}
		c.Resources.Limits = setQuantity(c.Resources.Limits, corev1.ResourceEphemeralStorage, lim)
	}
	for i := range spec.Volumes {
		if ed := spec.Volumes[i].EmptyDir; ed != nil {
			ed.SizeLimit = ptr.To(lim.DeepCopy())
		}
	}
}

func baseEnv(taskJSON string) []corev1.EnvVar {
	resourceRef := func(r string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: ContainerName, Resource: r}}
	}
	fieldRef := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	return []corev1.EnvVar{
		{Name: EnvTask, Value: taskJSON},
		{Name: EnvMemoryLimit, ValueFrom: resourceRef("limits.memory")},
		{Name: EnvGOMAXPROCS, ValueFrom: resourceRef("limits.cpu")},
		{Name: EnvNodeName, ValueFrom: fieldRef("spec.nodeName")},
		{Name: EnvPodName, ValueFrom: fieldRef("metadata.name")},
	}
}

// secretEnv exposes each key of spec.storage.secretRef that is a valid
// environment variable name, sorted, as a SecretKeyRef: secret values never
// appear in the Job.
func secretEnv(cpj *v1alpha1.CompressionJob, keys []string) []corev1.EnvVar {
	if cpj.Spec.Storage == nil || cpj.Spec.Storage.SecretRef == nil {
		return nil
	}
	name := cpj.Spec.Storage.SecretRef.Name
	var env []corev1.EnvVar
	for _, k := range EnvKeys(keys) {
		env = append(env, corev1.EnvVar{Name: k, ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: k},
		}})
	}
	return env
}

// EnvKeys are the Secret keys that become environment variables: valid
// names, not one the controller sets itself, sorted.
func EnvKeys(keys []string) []string {
	var out []string
	for _, k := range keys {
		if len(validation.IsEnvVarName(k)) == 0 && !reservedEnv[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// templateHash identifies what the stage's Job would run: its pod template
// less the Secret's keys (reading the Secret only to compare templates would
// cost an API call per look), and the Job settings taken from the spec that
// decide how it runs: retries, deadline and Kueue queue. A Job of an earlier
// run whose hash differs is replaced, so a fixed queue name or a longer
// deadline reaches the running stage. spec.ttlSecondsAfterFinished is left
// out: it does not change the work, and replacing a running Job for it
// would throw the work away.
func templateHash(cpj *v1alpha1.CompressionJob, stage *v1alpha1.Stage, taskJSON string, d StageDefaults) (string, error) {
	b, err := json.Marshal(struct {
		Template              corev1.PodTemplateSpec `json:"template"`
		BackoffLimit          int32                  `json:"backoffLimit"`
		ActiveDeadlineSeconds *int64                 `json:"activeDeadlineSeconds,omitempty"`
		QueueName             string                 `json:"queueName,omitempty"`
	}{
		Template:              podTemplate(cpj, stage, taskJSON, nil, d),
		BackoffLimit:          ptr.Deref(stage.BackoffLimit, defaultBackoffLimit),
		ActiveDeadlineSeconds: stage.ActiveDeadlineSeconds,
		QueueName:             queueName(cpj),
	})
	if err != nil {
		return "", fmt.Errorf("hashing the pod template of stage %s: %w", stage.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8]), nil
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
