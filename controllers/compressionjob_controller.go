package controllers

import (
	"context"
	"errors"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// DefaultSecretRetryInterval is how often a CompressionJob whose Secret is
// missing looks again (the manager does not watch Secrets, so it does not
// hold every Secret of the cluster in memory).
const DefaultSecretRetryInterval = 30 * time.Second

// DefaultImagePullStallAfter is how long a stage pod may fail to pull its
// image (ErrImagePull, ImagePullBackOff, ...) before its CompressionJob is
// Stalled: long enough for the kubelet to retry a transient registry error
// a few times, short enough that a wrong or missing image is reported.
const DefaultImagePullStallAfter = 5 * time.Minute

// CompressionJobReconciler drives each CompressionJob's stages as batch/v1
// Jobs and reports the run in status.
type CompressionJobReconciler struct {
	// Client reads from the manager's cache (CompressionJobs, and only the
	// Jobs and pods labelled kompress.dev/job) and writes to the API server.
	Client client.Client
	// APIReader reads Secrets and finished pods straight from the API
	// server: Secrets are not cached, and a finished pod's termination
	// message must not be missed because the pod cache lags the Job's.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Defaults  StageDefaults
	// Policy is what the cluster admin lets CompressionJobs do (Admit).
	Policy Policy
	// MaxConcurrentReconciles defaults to 1.
	MaxConcurrentReconciles int
	// SecretRetryInterval defaults to DefaultSecretRetryInterval.
	SecretRetryInterval time.Duration
	// ImagePullStallAfter defaults to DefaultImagePullStallAfter.
	ImagePullStallAfter time.Duration
	// Clock defaults to the real clock.
	Clock clock.PassiveClock
	// CleanupBackoffLimit, CleanupDeadline and CleanupGrace bound the
	// deletion of intermediate artifacts (see cleanup.go); zero values
	// take the Default* constants.
	CleanupBackoffLimit           int32
	CleanupDeadline, CleanupGrace time.Duration

	writes   statusWrites
	variants expansions
}

// +kubebuilder:rbac:groups=kompress.dev,resources=compressionjobs,verbs=get;list;watch
// Variants are checked by the API server with dry-run creates (sweep.go).
// +kubebuilder:rbac:groups=kompress.dev,resources=compressionjobs,verbs=create
// +kubebuilder:rbac:groups=kompress.dev,resources=compressionjobs/status,verbs=get;patch
// +kubebuilder:rbac:groups=kompress.dev,resources=compressionjobs/finalizers,verbs=update
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// SetupWithManager registers the controller: it owns the stage Jobs and
// watches their pods (to see unschedulable pods and termination messages).
func (r *CompressionJobReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Clock == nil {
		r.Clock = clock.RealClock{}
	}
	if r.SecretRetryInterval == 0 {
		r.SecretRetryInterval = DefaultSecretRetryInterval
	}
	if r.ImagePullStallAfter == 0 {
		r.ImagePullStallAfter = DefaultImagePullStallAfter
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.CompressionJob{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(podToCompressionJob)).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.MaxConcurrentReconciles}).
		Complete(r)
}

// podToCompressionJob maps a stage pod to its CompressionJob by label.
func podToCompressionJob(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[LabelJob]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// Reconcile fetches the CompressionJob, observes its Jobs and pods, acts at
// the first unfinished stage (create, suspend, resume or delete a Job),
// computes the whole status in memory and patches it once if it changed.
func (r *CompressionJobReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cpj := &v1alpha1.CompressionJob{}
	if err := r.Client.Get(ctx, req.NamespacedName, cpj); err != nil {
		if apierrors.IsNotFound(err) {
			tracker.forget(req.NamespacedName)
			r.writes.forget(req.NamespacedName)
			r.variants.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		reconcileErrors.WithLabelValues("get").Inc()
		return ctrl.Result{}, err
	}
	if !cpj.DeletionTimestamp.IsZero() {
		// Stage Jobs go with the CompressionJob through their owner
		// references; the final model is never deleted. Intermediate
		// artifacts may be, by policy (cleanup.go).
		after, err := r.reconcileDelete(ctx, cpj)
		return ctrl.Result{RequeueAfter: after}, err
	}
	if err := r.syncFinalizer(ctx, cpj); err != nil {
		reconcileErrors.WithLabelValues("finalizer").Inc()
		return ctrl.Result{}, err
	}
	kids, err := r.children(ctx, cpj)
	if err != nil {
		reconcileErrors.WithLabelValues("list").Inc()
		return ctrl.Result{}, err
	}

	orig := cpj.DeepCopy()
	run := newRun(r, cpj, kids, metav1.NewTime(r.Clock.Now().Truncate(time.Second)))
	res, actErr := run.reconcile(ctx)
	if actErr != nil {
		reconcileErrors.WithLabelValues("act").Inc()
		log.FromContext(ctx).Error(actErr, "acting on stage Jobs", "compressionJob", req.NamespacedName)
	}

	if !equality.Semantic.DeepEqual(orig.Status, cpj.Status) {
		// The optimistic lock keeps a reconcile that read a stale object
		// from overwriting newer status; the newer object's event brings
		// the CompressionJob back.
		patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, cpj, patch); err != nil {
			if apierrors.IsConflict(err) {
				return ctrl.Result{}, actErr
			}
			reconcileErrors.WithLabelValues("status").Inc()
			return ctrl.Result{}, errors.Join(actErr, err)
		}
		r.writes.set(cpj)
		r.emit(cpj, orig, run)
	}
	if run.summary.Phase != "" {
		tracker.set(req.NamespacedName, run.summary.Phase)
	}
	return res, actErr
}

// emit records the transitions between two statuses as events and the
// durations of stages that just finished.
func (r *CompressionJobReconciler) emit(cpj, orig *v1alpha1.CompressionJob, run *runState) {
	for _, e := range transitionEvents(&orig.Status, &cpj.Status) {
		r.event(cpj, e)
	}
	for _, s := range cpj.Status.Stages {
		if s.State != v1alpha1.StageSucceeded && s.State != v1alpha1.StageFailed {
			continue
		}
		if prev := findStage(orig.Status.Stages, s.Name); prev != nil && prev.State == s.State && prev.CacheKey == s.CacheKey {
			continue
		}
		if t, ok := stageType(cpj, s.Name); ok {
			observeStageDuration(t, s)
		}
	}
}

// stageType is the type of the stage a status.stages entry runs: the
// stage of that name, or for a sweep's run (<stage>/<variant>) the stage
// before the slash; a sweep's select step has none.
func stageType(cpj *v1alpha1.CompressionJob, name string) (v1alpha1.StageType, bool) {
	if cpj.Spec.Variants != nil {
		name, _, _ = strings.Cut(name, "/")
	}
	for _, st := range cpj.Spec.Stages {
		if st.Name == name {
			return st.Type, true
		}
	}
	return "", false
}

// maxEventNote is the API server's limit on an events.k8s.io/v1 note: a
// longer one is rejected and the event lost.
const maxEventNote = 1024

func (r *CompressionJobReconciler) event(cpj *v1alpha1.CompressionJob, e event) {
	if r.Recorder == nil {
		return
	}
	e.Note = pipeline.Truncate(e.Note, maxEventNote)
	if e.Job == "" {
		r.Recorder.Eventf(cpj, nil, e.Type, e.Reason, e.Action, "%s", e.Note)
		return
	}
	related := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: cpj.Namespace, Name: e.Job}}
	r.Recorder.Eventf(cpj, related, e.Type, e.Reason, e.Action, "%s", e.Note)
}

// children are a CompressionJob's stage Jobs (by name) and their pods,
// from the cache.
type children struct {
	jobs map[string]*batchv1.Job
	pods []corev1.Pod
}

func (r *CompressionJobReconciler) children(ctx context.Context, cpj *v1alpha1.CompressionJob) (children, error) {
	sel := []client.ListOption{client.InNamespace(cpj.Namespace), client.MatchingLabels{LabelJob: cpj.Name}}
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, sel...); err != nil {
		return children{}, err
	}
	var pods corev1.PodList
	if err := r.Client.List(ctx, &pods, sel...); err != nil {
		return children{}, err
	}
	kids := children{jobs: map[string]*batchv1.Job{}, pods: pods.Items}
	for i := range jobs.Items {
		if metav1.IsControlledBy(&jobs.Items[i], cpj) {
			kids.jobs[jobs.Items[i].Name] = &jobs.Items[i]
		}
	}
	return kids, nil
}

// finishedPods lists a finished Job's pods from the API server.
func (r *CompressionJobReconciler) finishedPods(ctx context.Context, job *batchv1.Job) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := r.APIReader.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{jobNameLabel: job.Name})
	return pods.Items, err
}
