package controllers

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

var unitDefaults = StageDefaults{
	RunnerImage: "runner:1", ImagePullPolicy: corev1.PullAlways, ServiceAccount: "kompress-runner", RunnerVersion: "v1",
	Resources: corev1.ResourceRequirements{Requests: rl("cpu", "500m"), Limits: rl("memory", "2Gi")},
}

func unitCPJ(stages ...v1alpha1.Stage) *v1alpha1.CompressionJob {
	return &v1alpha1.CompressionJob{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ml", Name: "mnist", UID: "uid-1"},
		Spec: v1alpha1.CompressionJobSpec{
			Source: v1alpha1.ModelSource{URI: "s3://m/src.onnx"},
			Output: v1alpha1.OutputSpec{URI: "s3://m/out"},
			Stages: stages,
		},
	}
}

func unitTask(t *testing.T, cpj *v1alpha1.CompressionJob, i int) pipeline.Task {
	t.Helper()
	in := pipeline.SourceRef(&cpj.Spec)
	if i > 0 {
		in = pipeline.Ref{URI: "s3://m/out/prev/model.onnx", Digest: "sha256:" + strings.Repeat("1", 64)}
	}
	task, err := pipeline.NewTask("ml/mnist", &cpj.Spec, i, in, "v1")
	if err != nil {
		t.Fatal(err)
	}
	return task
}

func envNames(c corev1.Container) []string {
	var n []string
	for _, e := range c.Env {
		n = append(n, e.Name)
	}
	return n
}

func TestBuildJob(t *testing.T) {
	quant := v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}},
		BackoffLimit: ptr.To[int32](4), ActiveDeadlineSeconds: ptr.To[int64](900)}
	custom := v1alpha1.Stage{Name: "mine", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeCustom, Custom: &v1alpha1.CustomSpec{
		Image: "registry.example/mine:2", Command: []string{"/bin/mine"}, Args: []string{"--fast"},
		Env: []v1alpha1.CustomEnvVar{{Name: "MODE", Value: "fast"}}}}}
	cases := []struct {
		name   string
		cpj    func() *v1alpha1.CompressionJob
		index  int
		keys   []string
		checks func(t *testing.T, job *batchv1.Job, task pipeline.Task)
	}{
		{"built-in stage", func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.TTLSecondsAfterFinished = ptr.To[int32](60)
			return c
		}, 0, nil, func(t *testing.T, job *batchv1.Job, task pipeline.Task) {
			if job.Name != pipeline.JobName("mnist", 0, "int8", task.CacheKey) || job.Namespace != "ml" {
				t.Errorf("name %s/%s", job.Namespace, job.Name)
			}
			wantLabels := map[string]string{LabelJob: "mnist", LabelStage: "int8", LabelStageIndex: "0"}
			if diff := cmp.Diff(wantLabels, job.Labels); diff != "" {
				t.Errorf("labels (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantLabels, job.Spec.Template.Labels); diff != "" {
				t.Errorf("pod labels (-want +got):\n%s", diff)
			}
			if job.Annotations[AnnotationCacheKey] != task.CacheKey || job.Annotations[AnnotationRun] != "run1" || len(job.Annotations[AnnotationTemplateHash]) != 16 {
				t.Errorf("annotations %v", job.Annotations)
			}
			if ref := metav1.GetControllerOf(job); ref == nil || ref.UID != "uid-1" || ref.Kind != "CompressionJob" || ref.APIVersion != "kompress.dev/v1alpha1" {
				t.Errorf("controller reference %+v", ref)
			}
			if *job.Spec.BackoffLimit != 4 || *job.Spec.ActiveDeadlineSeconds != 900 || *job.Spec.TTLSecondsAfterFinished != 60 || job.Spec.Suspend != nil {
				t.Errorf("backoff %d deadline %d ttl %d suspend %v", *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds, *job.Spec.TTLSecondsAfterFinished, job.Spec.Suspend)
			}
			wantPolicy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
				{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
					ContainerName: ptr.To("runner"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{64, 65, 66, 77}}},
				{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{
					{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
			}}
			if diff := cmp.Diff(wantPolicy, job.Spec.PodFailurePolicy); diff != "" {
				t.Errorf("podFailurePolicy (-want +got):\n%s", diff)
			}
			pod := job.Spec.Template.Spec
			c := pod.Containers[0]
			if pod.RestartPolicy != corev1.RestartPolicyNever || pod.ServiceAccountName != "kompress-runner" || *pod.AutomountServiceAccountToken ||
				*pod.SecurityContext.RunAsUser != 65532 || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("pod spec %+v", pod)
			}
			if c.Name != "runner" || c.Image != "runner:1" || c.ImagePullPolicy != corev1.PullAlways || !cmp.Equal(c.Command, []string{"kompress", "stage"}) ||
				c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError || c.TerminationMessagePath != "/dev/termination-log" {
				t.Errorf("container %+v", c)
			}
			sc := c.SecurityContext
			if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !cmp.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("container security context %+v", sc)
			}
			if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/tmp" || pod.Volumes[0].EmptyDir == nil {
				t.Fatalf("no writable /tmp: mounts %+v volumes %+v", c.VolumeMounts, pod.Volumes)
			}
			// Neither the manager nor the job bounds local disk: the
			// built-in default does, for the container and its /tmp.
			if got := scratch(job); got != "8Gi/8Gi" {
				t.Errorf("ephemeral-storage limit/sizeLimit of /tmp %s, want 8Gi/8Gi", got)
			}
			wantEnv := []corev1.EnvVar{
				{Name: "KOMPRESS_TASK", Value: mustEncode(t, task)},
				{Name: "KOMPRESS_MEMORY_LIMIT", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "runner", Resource: "limits.memory"}}},
				{Name: "GOMAXPROCS", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: "runner", Resource: "limits.cpu"}}},
				{Name: "KOMPRESS_NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
				{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			}
			if diff := cmp.Diff(wantEnv, c.Env); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		}},
		{"credentials and workload identity", func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Storage = &v1alpha1.StorageSpec{SecretRef: &corev1.LocalObjectReference{Name: "creds"}, ServiceAccountName: "s3-reader"}
			return c
		}, 0, []string{"AWS_SECRET_ACCESS_KEY", "9lives", "AWS_ACCESS_KEY_ID", "KOMPRESS_TASK", "GOMAXPROCS"}, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			c := job.Spec.Template.Spec.Containers[0]
			want := []string{"KOMPRESS_TASK", "KOMPRESS_MEMORY_LIMIT", "GOMAXPROCS", "KOMPRESS_NODE_NAME", "POD_NAME", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
			if diff := cmp.Diff(want, envNames(c)); diff != "" {
				t.Errorf("env names (-want +got):\n%s", diff)
			}
			ref := c.Env[5].ValueFrom.SecretKeyRef
			if ref.Name != "creds" || ref.Key != "AWS_ACCESS_KEY_ID" || c.Env[5].Value != "" {
				t.Errorf("secret env %+v", c.Env[5])
			}
			if sa := job.Spec.Template.Spec.ServiceAccountName; sa != "s3-reader" {
				t.Errorf("serviceAccountName %s", sa)
			}
		}},
		{"custom stage", func() *v1alpha1.CompressionJob { return unitCPJ(quant, custom) }, 1, nil, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			pod := job.Spec.Template.Spec
			c := pod.Containers[0]
			if c.Image != "registry.example/mine:2" || c.ImagePullPolicy != "" || !cmp.Equal(c.Command, []string{"/bin/mine"}) || !cmp.Equal(c.Args, []string{"--fast"}) {
				t.Errorf("custom container %+v", c)
			}
			if diff := cmp.Diff([]string{"KOMPRESS_TASK", "KOMPRESS_MEMORY_LIMIT", "GOMAXPROCS", "KOMPRESS_NODE_NAME", "POD_NAME", "MODE"}, envNames(c)); diff != "" {
				t.Errorf("env names (-want +got):\n%s", diff)
			}
			// A user image runs as its own (non-root) user, but never with
			// a token: its ServiceAccount's API rights stay out of reach.
			if !cmp.Equal(pod.AutomountServiceAccountToken, ptr.To(false)) || pod.SecurityContext.RunAsUser != nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Errorf("custom pod: automount %v runAsUser %v", pod.AutomountServiceAccountToken, pod.SecurityContext.RunAsUser)
			}
			if c.TerminationMessagePolicy != corev1.TerminationMessageFallbackToLogsOnError {
				t.Errorf("custom container terminationMessagePolicy %s", c.TerminationMessagePolicy)
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					t.Errorf("custom env %s reads a Secret", e.Name)
				}
			}
			if job.Labels[LabelStageIndex] != "1" {
				t.Errorf("stage index label %q", job.Labels[LabelStageIndex])
			}
		}},
		{"kueue queue", func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{QueueName: "team-a"}
			return c
		}, 0, nil, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			if job.Labels[LabelQueueName] != "team-a" || !ptr.Deref(job.Spec.Suspend, false) {
				t.Errorf("labels %v suspend %v: want the queue label and a suspended Job", job.Labels, job.Spec.Suspend)
			}
			if _, ok := job.Spec.Template.Labels[LabelQueueName]; ok {
				t.Errorf("the queue label belongs on the Job, not its pods")
			}
		}},
		{"local disk bounded by the stage's limit", func() *v1alpha1.CompressionJob {
			q := quant
			q.Resources = &corev1.ResourceRequirements{Limits: rl("ephemeral-storage", "20Gi")}
			return unitCPJ(q)
		}, 0, nil, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			if got := scratch(job); got != "20Gi/20Gi" {
				t.Errorf("ephemeral-storage limit/sizeLimit of /tmp %s, want 20Gi/20Gi", got)
			}
		}},
		{"local disk request above the default limit", func() *v1alpha1.CompressionJob {
			c := unitCPJ(quant)
			c.Spec.Scheduling = &v1alpha1.SchedulingSpec{Resources: &corev1.ResourceRequirements{Requests: rl("ephemeral-storage", "30Gi")}}
			return c
		}, 0, nil, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			if got := scratch(job); got != "30Gi/30Gi" {
				t.Errorf("ephemeral-storage limit/sizeLimit of /tmp %s, want 30Gi/30Gi", got)
			}
		}},
		{"backoff default when unset", func() *v1alpha1.CompressionJob {
			q := quant
			q.BackoffLimit = nil
			return unitCPJ(q)
		}, 0, nil, func(t *testing.T, job *batchv1.Job, _ pipeline.Task) {
			if *job.Spec.BackoffLimit != 2 {
				t.Errorf("backoffLimit %d, want 2", *job.Spec.BackoffLimit)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cpj := tc.cpj()
			task := unitTask(t, cpj, tc.index)
			job, err := BuildJob(StageJob{Owner: cpj, Index: tc.index, Task: task, RunHash: "run1", SecretKeys: tc.keys}, unitDefaults)
			if err != nil {
				t.Fatal(err)
			}
			tc.checks(t, job, task)
		})
	}
}

// TestTemplateHash checks the hash changes with what changes the pod and
// not with the Secret's keys or the run.
func TestTemplateHash(t *testing.T) {
	quant := v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}}
	hash := func(cpj *v1alpha1.CompressionJob, run string, keys []string, d StageDefaults) string {
		job, err := BuildJob(StageJob{Owner: cpj, Task: unitTask(t, cpj, 0), RunHash: run, SecretKeys: keys}, d)
		if err != nil {
			t.Fatal(err)
		}
		return job.Annotations[AnnotationTemplateHash]
	}
	base := unitCPJ(quant)
	h := hash(base, "r1", nil, unitDefaults)
	if h != hash(base, "r2", []string{"AWS_ACCESS_KEY_ID"}, unitDefaults) {
		t.Error("template hash depends on the run or the Secret's keys")
	}
	moved := unitCPJ(quant)
	moved.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "edge"}}
	if h == hash(moved, "r1", nil, unitDefaults) {
		t.Error("template hash ignores the node selector")
	}
	other := unitDefaults
	other.RunnerImage = "runner:2"
	if h == hash(base, "r1", nil, other) {
		t.Error("template hash ignores the runner image")
	}
	// The Job settings that decide how it runs count; the TTL does not.
	changes := map[string]func(c *v1alpha1.CompressionJob){
		"backoffLimit":          func(c *v1alpha1.CompressionJob) { c.Spec.Stages[0].BackoffLimit = ptr.To[int32](5) },
		"activeDeadlineSeconds": func(c *v1alpha1.CompressionJob) { c.Spec.Stages[0].ActiveDeadlineSeconds = ptr.To[int64](60) },
		"queueName":             func(c *v1alpha1.CompressionJob) { c.Spec.Scheduling = &v1alpha1.SchedulingSpec{QueueName: "team-b"} },
	}
	for field, change := range changes {
		c := unitCPJ(quant)
		change(c)
		if h == hash(c, "r1", nil, unitDefaults) {
			t.Errorf("template hash ignores %s", field)
		}
	}
	ttl := unitCPJ(quant)
	ttl.Spec.TTLSecondsAfterFinished = ptr.To[int32](60)
	if h != hash(ttl, "r1", nil, unitDefaults) {
		t.Error("template hash depends on ttlSecondsAfterFinished: a running Job would be replaced for it")
	}
	explicit := unitCPJ(quant)
	explicit.Spec.Stages[0].BackoffLimit = ptr.To[int32](defaultBackoffLimit)
	if h != hash(explicit, "r1", nil, unitDefaults) {
		t.Error("the defaulted backoffLimit and the same value set explicitly hash differently")
	}
}

// The manager's --stage-ephemeral-storage-limit bounds /tmp when the job
// sets nothing, and the cleanup pod gets its own small bound.
func TestScratchFromManagerDefaults(t *testing.T) {
	d := unitDefaults
	d.Resources = *unitDefaults.Resources.DeepCopy()
	d.Resources.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse("3Gi")
	cpj := unitCPJ(v1alpha1.Stage{Name: "int8", StageBody: v1alpha1.StageBody{Type: v1alpha1.StageTypeQuantize, Quantize: &v1alpha1.QuantizeSpec{Method: v1alpha1.QuantizeDynamic}}})
	job, err := BuildJob(StageJob{Owner: cpj, Task: unitTask(t, cpj, 0), RunHash: "r"}, d)
	if err != nil {
		t.Fatal(err)
	}
	if got := scratch(job); got != "3Gi/3Gi" {
		t.Errorf("stage pod: ephemeral-storage limit/sizeLimit of /tmp %s, want 3Gi/3Gi", got)
	}
	if got := scratch(BuildCleanupJob(cpj, []string{"s3://m/out/k/model.onnx"}, nil, nil, d, 1, time.Minute)); got != "64Mi/64Mi" {
		t.Errorf("cleanup pod: ephemeral-storage limit/sizeLimit of /tmp %s, want 64Mi/64Mi", got)
	}
}

// scratch is "<container ephemeral-storage limit>/<sizeLimit of /tmp>".
func scratch(job *batchv1.Job) string {
	pod := job.Spec.Template.Spec
	lim := pod.Containers[0].Resources.Limits[corev1.ResourceEphemeralStorage]
	size := "none"
	for _, v := range pod.Volumes {
		if v.Name == "tmp" && v.EmptyDir != nil && v.EmptyDir.SizeLimit != nil {
			size = v.EmptyDir.SizeLimit.String()
		}
	}
	return lim.String() + "/" + size
}

func TestEnvKeys(t *testing.T) {
	got := EnvKeys([]string{"b", "A_1", "1x", "with-dash", "POD_NAME", "a.b", ""})
	if diff := cmp.Diff([]string{"A_1", "a.b", "b", "with-dash"}, got); diff != "" {
		t.Errorf("EnvKeys (-want +got):\n%s", diff)
	}
}

func mustEncode(t *testing.T, task pipeline.Task) string {
	t.Helper()
	s, err := task.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return s
}
