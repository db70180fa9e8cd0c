package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/controllers"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/test/controlplane"
)

func artifact(uri string) *v1alpha1.Artifact {
	return &v1alpha1.Artifact{URI: uri, Digest: "sha256:" + strings.Repeat("a", 64), SizeBytes: 1}
}

func TestIntermediateArtifacts(t *testing.T) {
	stages := []v1alpha1.Stage{pruneStage("prune"), distillStage("recover"), quantizeStage("int8")}
	for _, tc := range []struct {
		name       string
		status     []v1alpha1.StageStatus
		output     *v1alpha1.Artifact
		variants   []v1alpha1.VariantStatus
		release    string
		uris, keep []string
	}{{
		name: "finished run: all but the final model, result.json first",
		status: []v1alpha1.StageStatus{
			{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx")},
			{Name: "recover", Output: artifact("s3://b/out/k1/model.onnx")},
			{Name: "int8", Output: artifact("s3://b/out/k2/model.onnx")},
		},
		output: artifact("s3://b/out/k2/model.onnx"),
		uris:   []string{"s3://b/out/k0/result.json", "s3://b/out/k0/model.onnx", "s3://b/out/k1/result.json", "s3://b/out/k1/model.onnx"},
		keep:   []string{"s3://b/out/k2/model.onnx", "s3://b/out/k2/result.json", "s3://b/out/k2/release.json", "s3://b/out/k2/report.html"},
	}, {
		name: "models with external data: their data files go after them, the final one's are kept",
		status: []v1alpha1.StageStatus{
			{Name: "prune", Output: withData(artifact("s3://b/out/k0/model.onnx?region=x"))},
			{Name: "recover", Output: artifact("s3://b/out/k1/model.onnx?region=x")},
			{Name: "int8", Output: withData(artifact("s3://b/out/k2/model.onnx?region=x"))},
		},
		output: withData(artifact("s3://b/out/k2/model.onnx?region=x")),
		uris: []string{"s3://b/out/k0/result.json?region=x", "s3://b/out/k0/model.onnx?region=x", "s3://b/out/k0/model.onnx.data?region=x",
			"s3://b/out/k1/result.json?region=x", "s3://b/out/k1/model.onnx?region=x"},
		keep: []string{"s3://b/out/k2/model.onnx?region=x", "s3://b/out/k2/result.json?region=x", "s3://b/out/k2/release.json?region=x",
			"s3://b/out/k2/report.html?region=x", "s3://b/out/k2/model.onnx.data?region=x"},
	}, {
		name: "failed at the last stage: every output is intermediate",
		status: []v1alpha1.StageStatus{
			{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx?region=x")},
			{Name: "recover", Output: artifact("s3://b/out/k1/model.onnx?region=x")},
			{Name: "int8", State: v1alpha1.StageFailed},
		},
		uris: []string{"s3://b/out/k0/result.json?region=x", "s3://b/out/k0/model.onnx?region=x", "s3://b/out/k1/result.json?region=x", "s3://b/out/k1/model.onnx?region=x"},
	}, {
		name: "a stage that changed nothing shares the final model's URI",
		status: []v1alpha1.StageStatus{
			{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx")},
			{Name: "recover", Output: artifact("s3://b/out/k2/model.onnx")},
			{Name: "int8", Output: artifact("s3://b/out/k2/model.onnx")},
		},
		output: artifact("s3://b/out/k2/model.onnx"),
		uris:   []string{"s3://b/out/k0/result.json", "s3://b/out/k0/model.onnx"},
		keep:   []string{"s3://b/out/k2/model.onnx", "s3://b/out/k2/result.json", "s3://b/out/k2/release.json", "s3://b/out/k2/report.html"},
	}, {
		name: "a sweep: every variant's final model and the selection are kept, the other runs go",
		status: []v1alpha1.StageStatus{
			{Name: "prune/v1", Output: artifact("s3://b/out/p1/model.onnx")},
			{Name: "prune/v2", Output: artifact("s3://b/out/p2/model.onnx")},
			{Name: "int8/v1", Output: artifact("s3://b/out/q1/model.onnx")},
			{Name: "int8/v2", Output: artifact("s3://b/out/q2/model.onnx")},
			{Name: "select", Output: artifact("s3://b/out/q2/model.onnx")},
		},
		output:   artifact("s3://b/out/q2/model.onnx"),
		variants: []v1alpha1.VariantStatus{{Name: "v1", Output: artifact("s3://b/out/q1/model.onnx")}, {Name: "v2", Output: artifact("s3://b/out/q2/model.onnx")}},
		release:  "s3://b/out/sel/release.json",
		uris:     []string{"s3://b/out/p1/result.json", "s3://b/out/p1/model.onnx", "s3://b/out/p2/result.json", "s3://b/out/p2/model.onnx"},
		keep: []string{"s3://b/out/q2/model.onnx", "s3://b/out/q2/result.json", "s3://b/out/q2/release.json", "s3://b/out/q2/report.html",
			"s3://b/out/q1/model.onnx", "s3://b/out/q1/result.json", "s3://b/out/q1/release.json", "s3://b/out/q1/report.html",
			"s3://b/out/sel/release.json", "s3://b/out/sel/result.json", "s3://b/out/sel/report.html"},
	}, {
		name:   "nothing written yet",
		status: []v1alpha1.StageStatus{{Name: "prune", State: v1alpha1.StageRunning}, {Name: "recover"}, {Name: "int8"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			cpj := newCPJ("ns", "j", stages...)
			cpj.Status.Stages, cpj.Status.Output, cpj.Status.Variants = tc.status, tc.output, tc.variants
			if tc.release != "" {
				cpj.Spec.Variants = &v1alpha1.VariantsSpec{}
				cpj.Status.Selection = &v1alpha1.SelectionStatus{Release: tc.release, Report: pipeline.SiblingURI(tc.release, pipeline.ReportFile)}
			}
			uris, keep := controllers.IntermediateArtifacts(cpj)
			if diff := cmp.Diff(tc.uris, uris); diff != "" {
				t.Errorf("uris (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.keep, keep); diff != "" {
				t.Errorf("keep (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBuildCleanupJob(t *testing.T) {
	cpj := newCPJ("ml", "mnist", pruneStage("prune"), quantizeStage("int8"))
	cpj.UID = "uid-1"
	cpj.Spec.Storage = &v1alpha1.StorageSpec{SecretRef: &corev1.LocalObjectReference{Name: "s3"}}
	cpj.Spec.Scheduling = &v1alpha1.SchedulingSpec{NodeSelector: map[string]string{"pool": "edge"}}
	job := controllers.BuildCleanupJob(cpj, []string{"s3://b/k0/result.json", "s3://b/k0/model.onnx"}, []string{"s3://b/k1/model.onnx"},
		[]string{"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"}, testDefaults, 2, 5*time.Minute)
	pod := job.Spec.Template.Spec
	c := pod.Containers[0]
	type view struct {
		Command, Args []string
		Env           []string
		Labels        map[string]string
		Backoff       int32
		Deadline      int64
		Owners        int
		SA            string
		Selector      map[string]string
		Image         string
		Restart       corev1.RestartPolicy
	}
	var env []string
	for _, e := range c.Env {
		env = append(env, e.Name+"<-"+e.ValueFrom.SecretKeyRef.Name+"/"+e.ValueFrom.SecretKeyRef.Key)
	}
	got := view{c.Command, c.Args, env, job.Labels, *job.Spec.BackoffLimit, *job.Spec.ActiveDeadlineSeconds,
		len(job.OwnerReferences), pod.ServiceAccountName, pod.NodeSelector, c.Image, pod.RestartPolicy}
	want := view{
		Command: []string{"kompress", "cleanup"},
		Args:    []string{"--uri=s3://b/k0/result.json", "--uri=s3://b/k0/model.onnx", "--keep=s3://b/k1/model.onnx"},
		Env:     []string{"AWS_ACCESS_KEY_ID<-s3/AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY<-s3/AWS_SECRET_ACCESS_KEY"},
		Labels:  map[string]string{controllers.LabelJob: "mnist", controllers.LabelCleanup: "true"},
		Backoff: 2, Deadline: 300, Owners: 0, SA: testDefaults.ServiceAccount,
		Selector: map[string]string{"kompress.dev/pool": "compress", "pool": "edge"},
		Image:    testDefaults.RunnerImage, Restart: corev1.RestartPolicyNever,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cleanup Job (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(job.Name, "mnist-2-cleanup-") || len(job.Name) > 63 {
		t.Errorf("Job name %q", job.Name)
	}
	if !ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false) || ptr.Deref(pod.AutomountServiceAccountToken, true) {
		t.Error("the cleanup pod is not locked down like a stage pod")
	}
}

// runStages plays every stage of cpj to success and returns it Ready.
func (e *env) runStages(t *testing.T, cpj *v1alpha1.CompressionJob) *v1alpha1.CompressionJob {
	t.Helper()
	for i := range cpj.Spec.Stages {
		jobs := e.waitJobs(t, cpj, i+1)
		e.succeedStage(t, &jobs[i], map[string]string{"accuracy": "0.98"})
	}
	return e.waitCPJ(t, client.ObjectKeyFromObject(cpj), "Ready", func(c *v1alpha1.CompressionJob) bool {
		return hasCond(c, v1alpha1.ConditionReady, metav1.ConditionTrue, v1alpha1.ReasonSucceeded)
	})
}

func (e *env) cleanupJob(t *testing.T, cpj *v1alpha1.CompressionJob) *batchv1.Job {
	t.Helper()
	var found *batchv1.Job
	poll(t, "the cleanup Job of "+cpj.Name, func(ctx context.Context) (bool, error) {
		var list batchv1.JobList
		if err := e.client.List(ctx, &list, client.InNamespace(cpj.Namespace), client.MatchingLabels{controllers.LabelCleanup: "true", controllers.LabelJob: cpj.Name}); err != nil {
			return false, err
		}
		if len(list.Items) == 1 {
			found = &list.Items[0]
		}
		return found != nil, nil
	})
	return found
}

func (e *env) waitGone(t *testing.T, obj client.Object) {
	t.Helper()
	poll(t, obj.GetName()+" to be gone", func(ctx context.Context) (bool, error) {
		err := e.client.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
}

// With intermediateArtifacts: Delete the CompressionJob carries a
// finalizer; deleting it runs a cleanup Job over the intermediate
// artifacts (never the final model) and releases the finalizer when the
// Job completes or fails, with an event either way.
func TestCleanupOnDelete(t *testing.T) {
	e := sharedEnv(t)
	for _, tc := range []struct {
		name                string
		finish              func(t *testing.T, job *batchv1.Job)
		reason, note, notIn string
	}{{
		name:   "cleanup Job completes",
		finish: func(t *testing.T, job *batchv1.Job) { e.completeJob(t, job) },
		reason: controllers.EventIntermediatesDeleted, note: "deleted 1 intermediate artifacts (the final model is kept)",
	}, {
		name: "cleanup Job fails after its retries",
		finish: func(t *testing.T, job *batchv1.Job) {
			pod := e.startPod(t, job, "node-a")
			e.finishPod(t, pod, 1, "deleted 0 of 2 objects: storage unreachable")
			e.failJob(t, job, batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit", 3)
		},
		reason: controllers.EventIntermediatesNotDeleted,
		note:   "BackoffLimitExceeded (Job has reached the specified backoff limit); last attempt exited with code 1: deleted 0 of 2 objects: storage unreachable",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ns := e.namespace(t)
			cpj := newCPJ(ns, "tidy", pruneStage("prune"), quantizeStage("int8"))
			cpj.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
			e.create(t, cpj)
			key := client.ObjectKeyFromObject(cpj)
			e.waitCPJ(t, key, "the finalizer", func(c *v1alpha1.CompressionJob) bool {
				return len(c.Finalizers) == 1 && c.Finalizers[0] == controllers.FinalizerArtifacts
			})
			done := e.runStages(t, cpj)
			if err := e.client.Delete(context.Background(), done); err != nil {
				t.Fatal(err)
			}
			job := e.cleanupJob(t, done)
			prune := done.Status.Stages[0].Output.URI
			final := done.Status.Output.URI
			wantArgs := []string{"--uri=" + pipeline.SiblingURI(prune, pipeline.ResultFile), "--uri=" + prune,
				"--keep=" + final, "--keep=" + pipeline.SiblingURI(final, pipeline.ResultFile), "--keep=" + pipeline.SiblingURI(final, pipeline.ReleaseFile), "--keep=" + pipeline.SiblingURI(final, pipeline.ReportFile)}
			if diff := cmp.Diff(wantArgs, job.Spec.Template.Spec.Containers[0].Args); diff != "" {
				t.Errorf("cleanup args (-want +got):\n%s", diff)
			}
			// Deletion waits for the cleanup.
			var held v1alpha1.CompressionJob
			if err := e.client.Get(context.Background(), key, &held); err != nil || held.DeletionTimestamp == nil {
				t.Fatalf("the CompressionJob is not held by its finalizer while the cleanup runs: %v", err)
			}
			tc.finish(t, job)
			e.waitGone(t, &v1alpha1.CompressionJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tidy"}})
			e.waitEvent(t, cpj, tc.reason, tc.note)
			e.waitGone(t, job)
		})
	}
}

// Retain (the default) holds nothing up; switching to Retain drops the
// finalizer.
func TestRetainHasNoFinalizer(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	cpj := newCPJ(ns, "keep", pruneStage("prune"))
	cpj.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
	e.create(t, cpj)
	key := client.ObjectKeyFromObject(cpj)
	e.waitCPJ(t, key, "the finalizer", func(c *v1alpha1.CompressionJob) bool { return len(c.Finalizers) == 1 })
	updateSpec(t, e, key, func(s *v1alpha1.CompressionJobSpec) { s.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyRetain })
	e.waitCPJ(t, key, "no finalizer", func(c *v1alpha1.CompressionJob) bool { return len(c.Finalizers) == 0 })
	var live v1alpha1.CompressionJob
	if err := e.client.Get(context.Background(), key, &live); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Delete(context.Background(), &live); err != nil {
		t.Fatal(err)
	}
	e.waitGone(t, &live)
	for _, j := range e.jobs(t, cpj) {
		if j.Labels[controllers.LabelCleanup] != "" {
			t.Errorf("a cleanup Job %s was created for a Retain job", j.Name)
		}
	}
}

// A cleanup Job that never finishes (no Job controller here) does not
// wedge the deletion: past the deadline and grace the finalizer goes, with
// a warning that names what is left.
func TestCleanupDeadlineReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("needs kube-apiserver and etcd")
	}
	cp, err := controlplane.Start(controlplane.Options{CRDDirectoryPaths: []string{crdDir()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cp.Stop() })
	mgr, err := ctrl.NewManager(cp.Config, ctrl.Options{
		Scheme: scheme, Cache: controllers.CacheOptions(""),
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &controllers.CompressionJobReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("kompress-manager"),
		Defaults: testDefaults, Policy: testPolicy, CleanupDeadline: 2 * time.Second, CleanupGrace: time.Second,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	c, err := client.New(cp.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{cp: cp, client: c}
	ns := e.namespace(t)
	cpj := newCPJ(ns, "stuck", pruneStage("prune"), quantizeStage("int8"))
	cpj.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
	e.create(t, cpj)
	got := e.runStages(t, cpj)
	start := time.Now()
	if err := c.Delete(context.Background(), got); err != nil {
		t.Fatal(err)
	}
	job := e.cleanupJob(t, got)
	e.waitGone(t, got)
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("released after %s, before the deadline", waited)
	}
	e.waitEvent(t, cpj, controllers.EventIntermediatesNotDeleted, fmt.Sprintf("no cleanup within 3s of the deletion); delete them by hand: %s", got.Status.Stages[0].Output.URI))
	e.waitGone(t, job)
}

// A cache key another CompressionJob references survives this one's
// cleanup, model and result.json together: jobs with the same output
// prefix and the same work share keys, and one job's intermediate may be
// another's final model or source.
func TestSharedArtifacts(t *testing.T) {
	stages := []v1alpha1.Stage{pruneStage("prune"), quantizeStage("int8")}
	self := newCPJ("ml", "a", stages...)
	self.UID = "uid-a"
	self.Status.Stages = []v1alpha1.StageStatus{
		{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx?region=x")},
		{Name: "int8", Output: artifact("s3://b/out/k1/model.onnx?region=x")},
	}
	self.Status.Output = artifact("s3://b/out/k1/model.onnx?region=x")
	uris, keep := controllers.IntermediateArtifacts(self)
	other := func(ns, name string, mutate func(*v1alpha1.CompressionJob)) v1alpha1.CompressionJob {
		o := newCPJ(ns, name, pruneStage("prune"))
		o.UID = types.UID("uid-" + name)
		mutate(o)
		return *o
	}
	deleting := func(o *v1alpha1.CompressionJob, policy v1alpha1.ArtifactPolicy) {
		o.DeletionTimestamp = &metav1.Time{Time: time.Now()}
		o.Spec.Output.IntermediateArtifacts = policy
	}
	k0 := []string{"s3://b/out/k0/result.json?region=x", "s3://b/out/k0/model.onnx?region=x"}
	for _, tc := range []struct {
		name   string
		others []v1alpha1.CompressionJob
		del    []string
		shared []string
	}{
		{"no other job", []v1alpha1.CompressionJob{*self}, k0, nil},
		{"another job's final model (another endpoint setting)", []v1alpha1.CompressionJob{*self, other("ml", "b", func(o *v1alpha1.CompressionJob) {
			o.Status.Stages = []v1alpha1.StageStatus{{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx?endpoint=http://s3:9000")}}
			o.Status.Output = artifact("s3://b/out/k0/model.onnx?endpoint=http://s3:9000")
		})}, nil, []string{"s3://b/out/k0 (referenced by ml/b)"}},
		{"another job's intermediate stage and a third's source", []v1alpha1.CompressionJob{
			other("team-b", "c", func(o *v1alpha1.CompressionJob) {
				o.Status.Stages = []v1alpha1.StageStatus{{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx")}}
			}),
			other("ml", "d", func(o *v1alpha1.CompressionJob) { o.Spec.Source.URI = "s3://b/out/k0/model.onnx" }),
		}, nil, []string{"s3://b/out/k0 (referenced by ml/d, team-b/c)"}},
		{"another job being deleted with Delete protects only its final model", []v1alpha1.CompressionJob{
			other("ml", "e", func(o *v1alpha1.CompressionJob) {
				o.Spec.Stages = stages
				o.Status.Stages = []v1alpha1.StageStatus{{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx")}, {Name: "int8", Output: artifact("s3://b/out/k9/model.onnx")}}
				deleting(o, v1alpha1.ArtifactPolicyDelete)
			}),
		}, k0, nil},
		{"another job being deleted with Retain keeps everything it wrote", []v1alpha1.CompressionJob{
			other("ml", "f", func(o *v1alpha1.CompressionJob) {
				o.Spec.Stages = stages
				o.Status.Stages = []v1alpha1.StageStatus{{Name: "prune", Output: artifact("s3://b/out/k0/model.onnx")}, {Name: "int8", Output: artifact("s3://b/out/k9/model.onnx")}}
				deleting(o, v1alpha1.ArtifactPolicyRetain)
			}),
		}, nil, []string{"s3://b/out/k0 (referenced by ml/f)"}},
		{"same cache key under another prefix is another object", []v1alpha1.CompressionJob{other("ml", "g", func(o *v1alpha1.CompressionJob) {
			o.Status.Output = artifact("s3://b/elsewhere/k0/model.onnx")
		})}, k0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			del, kept, shared := controllers.SharedArtifacts(self, tc.others, uris, keep)
			if diff := cmp.Diff(tc.del, del); diff != "" {
				t.Errorf("deleted (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.shared, shared); diff != "" {
				t.Errorf("shared (-want +got):\n%s", diff)
			}
			// What is not deleted is kept: the cleanup refuses to touch it.
			wantKept := append(append([]string(nil), keep...), k0[:2-len(tc.del)]...)
			if diff := cmp.Diff(wantKept, kept); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
		})
	}
}

// Deleting a job with intermediateArtifacts: Delete leaves the cache keys
// another live CompressionJob references: here its prune stage, which a
// second job with the same output prefix and the same first stage reused
// as its final model. The cleanup Job deletes only the rest and is told
// to keep the shared key, and an event says who holds it.
func TestCleanupKeepsSharedArtifacts(t *testing.T) {
	e := sharedEnv(t)
	ns := e.namespace(t)
	a := newCPJ(ns, "chain", pruneStage("prune"), distillStage("recover"), quantizeStage("int8"))
	a.Spec.Output.IntermediateArtifacts = v1alpha1.ArtifactPolicyDelete
	b := newCPJ(ns, "prune-only", pruneStage("prune"))
	b.Spec.Output.URI = a.Spec.Output.URI
	e.create(t, a)
	e.create(t, b)
	doneA := e.runStages(t, a)
	doneB := e.runStages(t, b)
	shared := doneA.Status.Stages[0].Output.URI
	if got := doneB.Status.Output.URI; got != shared {
		t.Fatalf("the two jobs do not share the prune stage's artifact: %s and %s", shared, got)
	}
	if err := e.client.Delete(context.Background(), doneA); err != nil {
		t.Fatal(err)
	}
	job := e.cleanupJob(t, doneA)
	recover := doneA.Status.Stages[1].Output.URI
	final := doneA.Status.Output.URI
	wantArgs := []string{"--uri=" + pipeline.SiblingURI(recover, pipeline.ResultFile), "--uri=" + recover,
		"--keep=" + final, "--keep=" + pipeline.SiblingURI(final, pipeline.ResultFile), "--keep=" + pipeline.SiblingURI(final, pipeline.ReleaseFile),
		"--keep=" + pipeline.SiblingURI(final, pipeline.ReportFile), "--keep=" + pipeline.SiblingURI(shared, pipeline.ResultFile), "--keep=" + shared}
	if diff := cmp.Diff(wantArgs, job.Spec.Template.Spec.Containers[0].Args); diff != "" {
		t.Errorf("cleanup args (-want +got):\n%s", diff)
	}
	e.waitEvent(t, a, controllers.EventIntermediatesKept, "(referenced by "+ns+"/prune-only)")
	e.completeJob(t, job)
	e.waitGone(t, doneA)
	e.waitEvent(t, a, controllers.EventIntermediatesDeleted, "deleted 1 intermediate artifacts (the final model is kept): "+recover)
}

// withData lists a model file and its external data file, as the runner
// does for a model written with external data.
func withData(a *v1alpha1.Artifact) *v1alpha1.Artifact {
	a.Files = []v1alpha1.ArtifactFile{{Name: "model.onnx", Digest: a.Digest, SizeBytes: 1}, {Name: "model.onnx.data", Digest: a.Digest, SizeBytes: 1}}
	return a
}
