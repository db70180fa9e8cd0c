package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// FinalizerArtifacts holds a CompressionJob with
// spec.output.intermediateArtifacts: Delete until its intermediate artifacts
// are deleted, or deleting them has failed for good.
const FinalizerArtifacts = "kompress.dev/intermediate-artifacts"

// LabelCleanup marks the cleanup Job (and its pod) of a CompressionJob.
const LabelCleanup = "kompress.dev/cleanup"

// Events about the cleanup of intermediate artifacts.
const (
	EventIntermediatesDeleted    = "IntermediatesDeleted"
	EventIntermediatesNotDeleted = "IntermediatesNotDeleted"
	// EventIntermediatesKept: intermediate artifacts another
	// CompressionJob references are left in place.
	EventIntermediatesKept = "IntermediatesKept"
)

// Bounds of the cleanup: the controller cannot reach storage, so a Job
// deletes the artifacts, retried at most DefaultCleanupBackoffLimit times
// within DefaultCleanupDeadline. Past the deadline plus
// DefaultCleanupGrace (a Job that never ran) the finalizer is released
// anyway: deleting a CompressionJob never hangs on storage.
const (
	DefaultCleanupBackoffLimit = 2
	DefaultCleanupDeadline     = 5 * time.Minute
	DefaultCleanupGrace        = time.Minute
)

// +kubebuilder:rbac:groups=kompress.dev,resources=compressionjobs,verbs=patch

// cleanupSettings are the reconciler's cleanup bounds, defaulted.
func (r *CompressionJobReconciler) cleanupSettings() (int32, time.Duration, time.Duration) {
	limit, deadline, grace := r.CleanupBackoffLimit, r.CleanupDeadline, r.CleanupGrace
	if limit <= 0 {
		limit = DefaultCleanupBackoffLimit
	}
	if deadline <= 0 {
		deadline = DefaultCleanupDeadline
	}
	if grace <= 0 {
		grace = DefaultCleanupGrace
	}
	return limit, deadline, grace
}

// wantsFinalizer: only jobs whose intermediate artifacts are to be deleted
// hold deletion up.
func wantsFinalizer(cpj *v1alpha1.CompressionJob) bool {
	return cpj.Spec.Output.IntermediateArtifacts == v1alpha1.ArtifactPolicyDelete
}

// syncFinalizer adds the finalizer to a live CompressionJob that wants it
// and removes it from one that no longer does.
func (r *CompressionJobReconciler) syncFinalizer(ctx context.Context, cpj *v1alpha1.CompressionJob) error {
	has := controllerutil.ContainsFinalizer(cpj, FinalizerArtifacts)
	if has == wantsFinalizer(cpj) {
		return nil
	}
	patch := client.MergeFromWithOptions(cpj.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if has {
		controllerutil.RemoveFinalizer(cpj, FinalizerArtifacts)
	} else {
		controllerutil.AddFinalizer(cpj, FinalizerArtifacts)
	}
	if err := r.Client.Patch(ctx, cpj, patch); err != nil {
		return fmt.Errorf("updating the finalizers of %s: %w", cpj.Name, err)
	}
	return nil
}

// reconcileDelete runs while a CompressionJob is being deleted. Stage Jobs
// go through their owner references, and the final model is never touched.
// With intermediateArtifacts: Delete, a cleanup Job deletes the other
// stages' artifacts, except those another CompressionJob references (see
// SharedArtifacts); the finalizer is released when it completes, fails
// (bounded retries), or the deadline passes, with an event either way.
func (r *CompressionJobReconciler) reconcileDelete(ctx context.Context, cpj *v1alpha1.CompressionJob) (time.Duration, error) {
	if !controllerutil.ContainsFinalizer(cpj, FinalizerArtifacts) {
		return 0, nil
	}
	limit, deadline, grace := r.cleanupSettings()
	name := cleanupJobName(cpj)
	var job batchv1.Job
	err := r.Client.Get(ctx, types.NamespacedName{Namespace: cpj.Namespace, Name: name}, &job)
	if err != nil && !apierrors.IsNotFound(err) {
		return 0, err
	}
	giveUp := cpj.DeletionTimestamp.Add(deadline + grace)
	left := giveUp.Sub(r.Clock.Now())
	if err == nil {
		// The Job holds what was decided when it was created: report
		// what it was given, not what a new look would give it.
		uris := cleanupArgs(&job, "--uri=")
		switch {
		case jobComplete(&job):
			return 0, r.release(ctx, cpj, &event{Job: name, Type: corev1.EventTypeNormal, Reason: EventIntermediatesDeleted, Action: "DeleteArtifacts",
				Note: pipeline.Truncate(fmt.Sprintf("cleanup Job %s deleted %d intermediate artifacts (the final model is kept): %s",
					name, len(models(uris)), strings.Join(models(uris), ", ")), pipeline.MaxStatusMessage)})
		case jobFailed(&job):
			why := r.cleanupFailure(ctx, &job)
			return 0, r.release(ctx, cpj, notDeleted(name, uris, fmt.Sprintf("cleanup Job %s failed: %s", name, why)))
		case left <= 0:
			return 0, r.release(ctx, cpj, notDeleted(name, uris, fmt.Sprintf("no cleanup within %s of the deletion", deadline+grace)))
		}
		// Running: its pod's events bring the CompressionJob back; the
		// Job's own are not watched (it has no owner), so look again soon.
		return min(left, cleanupPoll), nil
	}
	uris, keep := IntermediateArtifacts(cpj)
	if !wantsFinalizer(cpj) || len(uris) == 0 {
		return 0, r.release(ctx, cpj, nil)
	}
	var all v1alpha1.CompressionJobList
	if err := r.Client.List(ctx, &all); err != nil {
		return 0, fmt.Errorf("listing CompressionJobs to find artifacts they share: %w", err)
	}
	uris, keep, shared := SharedArtifacts(cpj, all.Items, uris, keep)
	var keptEvent *event
	if len(shared) > 0 {
		keptEvent = &event{Job: name, Type: corev1.EventTypeNormal, Reason: EventIntermediatesKept, Action: "DeleteArtifacts",
			Note: pipeline.Truncate("intermediate artifacts other CompressionJobs reference are kept: "+strings.Join(shared, "; "), pipeline.MaxStatusMessage)}
	}
	if len(uris) == 0 {
		return 0, r.release(ctx, cpj, keptEvent)
	}
	if left <= 0 {
		return 0, r.release(ctx, cpj, notDeleted(name, uris, fmt.Sprintf("no cleanup within %s of the deletion", deadline+grace)))
	}
	if refused := admitPod(cpj, r.Defaults, r.Policy); len(refused) > 0 {
		return 0, r.release(ctx, cpj, notDeleted(name, uris, "the cluster does not run its cleanup pod: "+refusalMessage(refused)))
	}
	keys, err := (&runState{r: r, cpj: cpj}).secretKeys(ctx)
	var nf *secretNotFound
	if errors.As(err, &nf) {
		return 0, r.release(ctx, cpj, notDeleted(name, uris, err.Error()))
	}
	if err != nil {
		return 0, err
	}
	cj := BuildCleanupJob(cpj, uris, keep, keys, r.Defaults, limit, deadline)
	if err := r.Client.Create(ctx, cj); err != nil && !apierrors.IsAlreadyExists(err) {
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) {
			return 0, r.release(ctx, cpj, notDeleted(name, uris, "creating the cleanup Job: "+err.Error()))
		}
		return 0, err
	} else if err == nil && keptEvent != nil {
		r.event(cpj, *keptEvent)
	}
	return min(left, cleanupPoll), nil
}

// cleanupArgs are the values of a cleanup Job's flag (--uri= or --keep=).
func cleanupArgs(job *batchv1.Job, flag string) []string {
	var out []string
	for _, c := range job.Spec.Template.Spec.Containers {
		for _, a := range c.Args {
			if v, ok := strings.CutPrefix(a, flag); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// SharedArtifacts takes out of a cleanup list (uris, keep from
// IntermediateArtifacts) every artifact whose cache key another
// CompressionJob references: a stage output or final model in its status
// (jobs with the same output prefix and the same work share cache keys),
// or a model or dataset its spec reads. A cache key is shared or not as a
// whole: its model and result.json go to keep together. Another job being
// deleted with intermediateArtifacts: Delete protects only its final model
// (it deletes its own intermediates, minding this one in turn). URIs are
// compared without their query (an endpoint setting does not make another
// object). shared describes what was kept and who references it.
func SharedArtifacts(cpj *v1alpha1.CompressionJob, others []v1alpha1.CompressionJob, uris, keep []string) (del, kept, shared []string) {
	refs := map[string]map[string]string{}
	add := func(o *v1alpha1.CompressionJob, uri string) {
		if uri == "" {
			return
		}
		k := artifactDir(uri)
		if refs[k] == nil {
			refs[k] = map[string]string{}
		}
		refs[k][o.Namespace+"/"+o.Name] = ""
	}
	for i := range others {
		o := &others[i]
		if o.UID == cpj.UID && o.Namespace == cpj.Namespace && o.Name == cpj.Name {
			continue
		}
		if o.DeletionTimestamp != nil && wantsFinalizer(o) {
			_, finals := IntermediateArtifacts(o)
			for _, u := range finals {
				add(o, u)
			}
			continue
		}
		for _, u := range statusArtifacts(o) {
			add(o, u)
		}
		for _, u := range specURIs(&o.Spec) {
			add(o, u)
		}
	}
	kept = append(kept, keep...)
	reported := map[string]bool{}
	for _, u := range uris {
		k := artifactDir(u)
		who := sortedStringKeys(refs[k])
		if len(who) == 0 {
			del = append(del, u)
			continue
		}
		kept = append(kept, u)
		if !reported[k] {
			reported[k] = true
			shared = append(shared, fmt.Sprintf("%s (referenced by %s)", k, strings.Join(who, ", ")))
		}
	}
	return del, kept, shared
}

// statusArtifacts are the models a CompressionJob's status names.
func statusArtifacts(cpj *v1alpha1.CompressionJob) []string {
	var out []string
	if cpj.Status.Output != nil {
		out = append(out, cpj.Status.Output.URI)
	}
	for _, s := range cpj.Status.Stages {
		if s.Output != nil {
			out = append(out, s.Output.URI)
		}
	}
	return out
}

// specURIs are the models and datasets a spec reads.
func specURIs(spec *v1alpha1.CompressionJobSpec) []string {
	out := []string{spec.Source.URI}
	if spec.Dataset != nil {
		out = append(out, spec.Dataset.URI)
	}
	for _, st := range spec.Stages {
		if d := st.Distill; d != nil {
			if d.Teacher != nil {
				out = append(out, d.Teacher.URI)
			}
			if d.Student != nil {
				out = append(out, d.Student.URI)
			}
			if d.Dataset != nil {
				out = append(out, d.Dataset.URI)
			}
		}
	}
	return out
}

// artifactDir is the folder of an artifact (<output>/<cache-key>), without
// the URI's query.
func artifactDir(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return path.Dir(uri)
	}
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	u.Path = path.Dir(u.Path)
	return u.String()
}

// cleanupPoll is how often a running cleanup Job is looked at.
const cleanupPoll = 2 * time.Second

func notDeleted(job string, uris []string, why string) *event {
	return &event{Job: job, Type: corev1.EventTypeWarning, Reason: EventIntermediatesNotDeleted, Action: "DeleteArtifacts",
		Note: pipeline.Truncate(fmt.Sprintf("intermediate artifacts left in storage (%s); delete them by hand: %s",
			why, strings.Join(models(uris), ", ")), pipeline.MaxStatusMessage)}
}

// models keeps the model URIs of a cleanup list (each comes with its
// result.json).
func models(uris []string) []string {
	var out []string
	for _, u := range uris {
		if !strings.Contains(u, "/"+pipeline.ResultFile) {
			out = append(out, u)
		}
	}
	return out
}

// release removes the finalizer, then deletes the cleanup Job if there is
// one (its TTL collects it otherwise) and emits the event. The finalizer
// goes first: a Job deleted before a failed release would be created again.
func (r *CompressionJobReconciler) release(ctx context.Context, cpj *v1alpha1.CompressionJob, e *event) error {
	patch := client.MergeFromWithOptions(cpj.DeepCopy(), client.MergeFromWithOptimisticLock{})
	controllerutil.RemoveFinalizer(cpj, FinalizerArtifacts)
	if err := r.Client.Patch(ctx, cpj, patch); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("releasing the finalizer of %s: %w", cpj.Name, err)
	}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: cpj.Namespace, Name: cleanupJobName(cpj)}}
	if err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		log.FromContext(ctx).Error(err, "deleting the cleanup Job; its TTL will", "job", job.Name)
	}
	if e != nil {
		r.event(cpj, *e)
	}
	return nil
}

// cleanupFailure says why the cleanup Job failed: its condition and the
// last pod's termination message.
func (r *CompressionJobReconciler) cleanupFailure(ctx context.Context, job *batchv1.Job) string {
	c := jobCondition(job, batchv1.JobFailed)
	why := c.Reason
	if c.Message != "" {
		why += " (" + c.Message + ")"
	}
	pods, err := r.finishedPods(ctx, job)
	if err != nil {
		return why
	}
	for _, p := range podsOf(job, pods) {
		if term := runnerTermination(&p); term != nil && term.Message != "" {
			return fmt.Sprintf("%s; last attempt exited with code %d: %s", why, term.ExitCode, pipeline.Truncate(term.Message, 300))
		}
	}
	return why
}

// IntermediateArtifacts lists what the cleanup deletes: for every stage
// output in status except the final models, its result.json and then its
// model (a result.json must never outlive its model: a runner would take it
// as a cache hit). keep lists the final models and their manifests, which
// the cleanup refuses to touch: the final model of a chain; with
// spec.variants, every variant's final model (the alternatives) and the
// select step's release.json, report.html and result.json. Only the
// current run's artifacts are known.
func IntermediateArtifacts(cpj *v1alpha1.CompressionJob) (uris, keep []string) {
	finals := map[string]bool{}
	add := func(uri string) {
		if uri != "" && !finals[uri] {
			finals[uri] = true
			keep = append(keep, uri, pipeline.SiblingURI(uri, pipeline.ResultFile), pipeline.SiblingURI(uri, pipeline.ReleaseFile),
				pipeline.SiblingURI(uri, pipeline.ReportFile))
		}
	}
	if cpj.Status.Output != nil {
		add(cpj.Status.Output.URI)
		keep = append(keep, dataFiles(cpj.Status.Output)...)
	}
	if n := len(cpj.Status.Stages); n > 0 && n == len(cpj.Spec.Stages) && cpj.Spec.Variants == nil && cpj.Status.Stages[n-1].Output != nil {
		add(cpj.Status.Stages[n-1].Output.URI)
	}
	for _, v := range cpj.Status.Variants {
		if v.Output != nil {
			add(v.Output.URI)
		}
	}
	if sel := cpj.Status.Selection; sel != nil && sel.Release != "" {
		keep = append(keep, sel.Release, pipeline.SiblingURI(sel.Release, pipeline.ResultFile), sel.Report)
	}
	seen := map[string]bool{}
	for _, s := range cpj.Status.Stages {
		if s.Output == nil || s.Output.URI == "" || finals[s.Output.URI] || seen[s.Output.URI] {
			continue
		}
		seen[s.Output.URI] = true
		uris = append(uris, pipeline.SiblingURI(s.Output.URI, pipeline.ResultFile), s.Output.URI)
		uris = append(uris, dataFiles(s.Output)...)
	}
	return uris, keep
}

// dataFiles are the URIs of an artifact's external data files (beside its
// model file, which comes first in Files): deleted after the model, so
// that a model is never left without its data.
func dataFiles(a *v1alpha1.Artifact) []string {
	var uris []string
	for i, f := range a.Files {
		if i > 0 {
			uris = append(uris, pipeline.SiblingURI(a.URI, f.Name))
		}
	}
	return uris
}

// cleanupJobName is <job>-cleanup-<hash>, within the 63 characters of a
// label value.
func cleanupJobName(cpj *v1alpha1.CompressionJob) string {
	return pipeline.JobName(cpj.Name, len(cpj.Spec.Stages), "cleanup", string(cpj.UID))
}

// BuildCleanupJob renders the Job that deletes uris: the runner image
// running `kompress cleanup`, with the stage pods' credentials, service
// account, placement and locked-down security context, small resources,
// and bounded retries.
func BuildCleanupJob(cpj *v1alpha1.CompressionJob, uris, keep, secretKeys []string, d StageDefaults, backoffLimit int32, deadline time.Duration) *batchv1.Job {
	labels := map[string]string{LabelJob: cpj.Name, LabelCleanup: "true"}
	pod := podTemplate(cpj, &v1alpha1.Stage{}, "", nil, d)
	pod.Labels = copyMap(labels)
	c := &pod.Spec.Containers[0]
	c.Command = []string{"kompress", "cleanup"}
	c.Args = nil
	for _, u := range uris {
		c.Args = append(c.Args, "--uri="+u)
	}
	for _, k := range keep {
		c.Args = append(c.Args, "--keep="+k)
	}
	c.Env = secretEnv(cpj, secretKeys)
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m"), corev1.ResourceMemory: resource.MustParse("64Mi"),
			corev1.ResourceEphemeralStorage: resource.MustParse("16Mi")},
		Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceEphemeralStorage: resource.MustParse("64Mi")},
	}
	boundScratch(&pod.Spec)
	return &batchv1.Job{
		// No owner reference: a foreground deletion of the CompressionJob
		// would delete the Job as soon as it exists. The controller deletes
		// it when it releases the finalizer; the TTL is a backstop.
		ObjectMeta: metav1.ObjectMeta{Name: cleanupJobName(cpj), Namespace: cpj.Namespace, Labels: labels},
		Spec: batchv1.JobSpec{
			BackoffLimit:            ptr.To(backoffLimit),
			ActiveDeadlineSeconds:   ptr.To(int64(deadline / time.Second)),
			TTLSecondsAfterFinished: ptr.To[int32](600),
			PodFailurePolicy:        podFailurePolicy(),
			Template:                pod,
		},
	}
}
