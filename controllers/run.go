package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// runState is one reconcile of one CompressionJob: the plan walked stage by
// stage, the first unfinished stage (the frontier) and the summary.
type runState struct {
	r       *CompressionJobReconciler
	cpj     *v1alpha1.CompressionJob
	kids    children
	now     metav1.Time
	runHash string
	newRun  bool

	stages []v1alpha1.StageStatus
	front  *frontier
	// planned holds the Job names of every stage whose cache key is known.
	planned map[string]bool
	// replace holds Jobs of earlier runs to delete and create again.
	replace []*batchv1.Job
	// stalled makes the run Stalled while the frontier is not failed
	// (a missing Secret).
	stalled bool
	summary pipeline.Summary
	requeue time.Duration
	// sweep is set when the job has spec.variants (sweep.go).
	sweep *sweepPlan
}

// frontier is the first stage that is not done.
type frontier struct {
	index int
	task  pipeline.Task
	name  string
	job   *batchv1.Job
}

func newRun(r *CompressionJobReconciler, cpj *v1alpha1.CompressionJob, kids children, now metav1.Time) *runState {
	h := pipeline.RunHash(&cpj.Spec)
	return &runState{
		r: r, cpj: cpj, kids: kids, now: now, runHash: h,
		newRun:  cpj.Status.RunHash != h,
		planned: map[string]bool{},
	}
}

// reconcile observes every stage, acts at the frontier, and writes the
// status (in memory) for the current generation.
func (s *runState) reconcile(ctx context.Context) (reconcile.Result, error) {
	if s.cpj.Spec.Variants != nil {
		return s.reconcileSweep(ctx)
	}
	st := &s.cpj.Status
	if err := s.observe(ctx, st.Stages); err != nil {
		// Without a full view of the stages, leave status (and its
		// observedGeneration) as it was and try again.
		return reconcile.Result{}, err
	}
	if s.newRun {
		st.RunHash = s.runHash
		st.StartTime = &s.now
		st.CompletionTime = nil
	}
	errs := []error{s.deleteStale(ctx)}
	switch {
	case s.front == nil:
	case s.stages[s.front.index].State == v1alpha1.StageFailed:
		errs = append(errs, s.stopFailed(ctx))
	default:
		errs = append(errs, s.act(ctx))
	}
	st.Stages = s.stages
	s.summary = pipeline.Summarize(&s.cpj.Spec, s.stages)
	if s.stalled && !s.summary.Terminal() {
		s.summary.Phase = pipeline.PhaseFailed
	}
	s.summary.Apply(st, s.cpj.Generation, s.now)
	st.ObservedGeneration = s.cpj.Generation
	return reconcile.Result{RequeueAfter: s.requeue}, errors.Join(errs...)
}

// observe walks the stages in order, computing each one's task and status,
// until the first stage that is not done; later stages are Pending.
func (s *runState) observe(ctx context.Context, prev []v1alpha1.StageStatus) error {
	spec := &s.cpj.Spec
	var input *v1alpha1.Artifact
	var err error
	for i, stage := range spec.Stages {
		if s.front != nil {
			s.stages = append(s.stages, v1alpha1.StageStatus{Name: stage.Name, State: v1alpha1.StagePending})
			continue
		}
		task, terr := s.task(i, input)
		if terr != nil {
			s.stages = append(s.stages, v1alpha1.StageStatus{
				Name: stage.Name, State: v1alpha1.StageFailed, Reason: v1alpha1.ReasonBadInput,
				Message: pipeline.Truncate(terr.Error(), pipeline.MaxStatusMessage),
			})
			s.front = &frontier{index: i}
			continue
		}
		name := pipeline.JobName(s.cpj.Name, i, stage.Name, task.CacheKey)
		s.planned[name] = true
		st, oerr := s.observeStage(ctx, s.cpj, i, task, name, findStage(prev, stage.Name))
		if oerr != nil {
			err = errors.Join(err, oerr)
		}
		if st.JobName != "" {
			s.planned[st.JobName] = true // a settled stage keeps its Job
		}
		s.stages = append(s.stages, st)
		if st.State == v1alpha1.StageSucceeded || st.State == v1alpha1.StageCached {
			input = st.Output
			continue
		}
		s.front = &frontier{index: i, task: task, name: name, job: s.kids.jobs[name]}
	}
	return err
}

func (s *runState) task(i int, prevOutput *v1alpha1.Artifact) (pipeline.Task, error) {
	in, err := pipeline.StageInput(&s.cpj.Spec, i, prevOutput)
	if err != nil {
		return pipeline.Task{}, err
	}
	t, err := pipeline.NewTask(s.cpj.Namespace+"/"+s.cpj.Name, &s.cpj.Spec, i, in, s.r.Defaults.RunnerVersion)
	t.SetChain(&s.cpj.Spec, s.stages) // the stages observed before i, for release.json
	return t, err
}

// observeStage decides one stage's status: kept from status when this run
// already settled it, Cached when an earlier run produced the same cache
// key, else read from its Job and pods.
func (s *runState) observeStage(ctx context.Context, owner *v1alpha1.CompressionJob, i int, task pipeline.Task, name string, prev *v1alpha1.StageStatus) (v1alpha1.StageStatus, error) {
	if prev != nil && !s.newRun && settled(prev.State) {
		// Settled in this run: the Job and its pods may be gone (TTL), and
		// a manager with another --runner-version does not redo a stage
		// (or a whole finished run) until the spec changes.
		return *prev.DeepCopy(), nil
	}
	// Reuse without a pod only what the key proves: a task that does not
	// pin the blobs it reads is keyed by their URIs, and the runner must
	// read them again to tell whether they changed (pipeline.Task.Resolve).
	if prev != nil && s.newRun && prev.CacheKey == task.CacheKey && prev.Output != nil && task.Pinned() &&
		(prev.State == v1alpha1.StageSucceeded || prev.State == v1alpha1.StageCached) {
		c := *prev.DeepCopy()
		c.State, c.Reason, c.JobName, c.Attempts = v1alpha1.StageCached, pipeline.ReasonCached, "", 0
		c.Message = "reused " + prev.Output.URI + " from an earlier run with the same cache key"
		return c, nil
	}
	base := v1alpha1.StageStatus{Name: task.Stage.Name, JobName: name, CacheKey: task.CacheKey, State: v1alpha1.StagePending}
	job := s.kids.jobs[name]
	if job == nil {
		return base, nil
	}
	if job.Annotations[AnnotationRun] != s.runHash {
		if stale, why := s.staleJob(owner, i, task, job); stale {
			s.replace = append(s.replace, job)
			base.Reason = v1alpha1.ReasonPending
			base.Message = fmt.Sprintf("replacing Job %s of an earlier run: %s", job.Name, why)
			return base, nil
		}
	}
	if !jobFinished(job) {
		return observeActive(base, job, s.kids.pods, s.cpj.Spec.Suspend), nil
	}
	pods, err := s.r.finishedPods(ctx, job)
	if err != nil {
		return base, fmt.Errorf("reading the pods of finished Job %s: %w", job.Name, err)
	}
	st := observeFinished(base, job, pods, task)
	if st.State == v1alpha1.StageFailed && st.Reason == v1alpha1.ReasonInvalidResult && job.Annotations[AnnotationRun] != s.runHash {
		// An earlier run's Job whose result is gone: run it again (the
		// runner finds its result.json and skips the work).
		s.replace = append(s.replace, job)
		base.Reason = v1alpha1.ReasonPending
		base.Message = fmt.Sprintf("replacing Job %s of an earlier run: its result can no longer be read", job.Name)
		return base, nil
	}
	return st, nil
}

func settled(s v1alpha1.StageState) bool {
	return s == v1alpha1.StageSucceeded || s == v1alpha1.StageCached || s == v1alpha1.StageFailed
}

// staleJob reports whether a Job an earlier run created for this stage must
// be replaced rather than adopted: it failed (a new run retries), it
// finished on blobs that are not pinned (they may have changed), or it is
// unfinished with another pod template, backoff limit, deadline or queue
// than this run would create (templateHash).
func (s *runState) staleJob(owner *v1alpha1.CompressionJob, i int, task pipeline.Task, job *batchv1.Job) (bool, string) {
	if jobFailed(job) {
		return true, "it failed"
	}
	if jobComplete(job) && !task.Pinned() {
		return true, "the blobs its stage reads are not pinned by digest and may have changed since"
	}
	if jobComplete(job) {
		return false, ""
	}
	want, err := BuildJob(StageJob{Owner: owner, Index: i, Task: task, RunHash: s.runHash}, s.r.Defaults)
	if err != nil || want.Annotations[AnnotationTemplateHash] != job.Annotations[AnnotationTemplateHash] {
		return true, "its pod template, backoffLimit, activeDeadlineSeconds or queue differs from the current spec's"
	}
	return false, ""
}

// deleteStale deletes the Jobs that the current plan does not use, and
// those to replace.
func (s *runState) deleteStale(ctx context.Context) error {
	var errs []error
	for _, job := range s.kids.jobs {
		if s.planned[job.Name] {
			continue
		}
		if job.Annotations[AnnotationRun] == s.runHash {
			// A Job of this run outside the plan: its cache key changed
			// (another --runner-version). Make sure the plan was not drawn
			// from a copy that misses this manager's last write.
			if fresh, err := s.r.upToDate(ctx, s.cpj); err != nil || !fresh {
				errs = append(errs, err)
				continue
			}
		}
		errs = append(errs, s.deleteJob(ctx, job, "its stage is not in the current plan"))
	}
	for _, job := range s.replace {
		errs = append(errs, s.deleteJob(ctx, job, "the current run replaces it"))
	}
	return errors.Join(errs...)
}

// deleteJob deletes a Job (its pods in the background) if it is still the
// Job that was observed: the UID precondition keeps a newer Job of the same
// name safe.
func (s *runState) deleteJob(ctx context.Context, job *batchv1.Job, why string) error {
	if job.DeletionTimestamp != nil {
		return nil
	}
	err := s.r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground),
		client.Preconditions{UID: &job.UID})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting Job %s: %w", job.Name, err)
	}
	s.r.event(s.cpj, event{Job: job.Name, Type: corev1.EventTypeNormal, Reason: EventJobDeleted, Action: "DeleteJob", Note: fmt.Sprintf("deleted Job %s: %s", job.Name, why)})
	return nil
}

// act moves the frontier stage on: enforce the run's deadline, suspend or
// resume its Job, or create it.
func (s *runState) act(ctx context.Context) error {
	f := s.front
	st := &s.stages[f.index]
	if s.deadlineExceeded(st) {
		return s.stopFailed(ctx)
	}
	if f.job != nil && containsReplace(s.replace, f.job) {
		return nil // wait for the old Job to go before creating its successor
	}
	if s.cpj.Spec.Suspend {
		return s.suspend(ctx, st, f.job)
	}
	if f.job == nil {
		return s.create(ctx, st)
	}
	if ptr.Deref(f.job.Spec.Suspend, false) && f.job.Labels[LabelQueueName] == "" && !jobFinished(f.job) {
		return s.setJobSuspend(ctx, st, f.job, false)
	}
	s.imagePullStall(st, f.job)
	return nil
}

// imagePullStall makes the run Stalled once the frontier's pod has failed
// to pull its image for ImagePullStallAfter: the kubelet goes on trying
// (the Job is kept, and an image pushed later still runs), but the
// CompressionJob says it cannot progress, with the kubelet's message.
// Before then it asks to be called back when the bound is reached.
func (s *runState) imagePullStall(st *v1alpha1.StageStatus, job *batchv1.Job) {
	since, failing := imagePullFailingSince(job, s.kids.pods)
	if !failing || !imagePullReasons[st.Reason] {
		return
	}
	bound := s.r.ImagePullStallAfter
	if left := since.Add(bound).Sub(s.now.Time); left > 0 {
		s.requeue = minPositive(s.requeue, left)
		return
	}
	st.Message = pipeline.Truncate(fmt.Sprintf("the image of stage %s could not be pulled for over %s (the kubelet keeps trying): %s",
		st.Name, bound, st.Message), pipeline.MaxStatusMessage)
	s.stalled = true
}

// stopFailed deletes the unfinished Job of a frontier stage that failed
// while it ran (the run outlived spec.activeDeadlineSeconds), whichever run
// created it: a failed run runs nothing. It is called on every reconcile of
// a failed run, so a delete that failed once is tried again.
func (s *runState) stopFailed(ctx context.Context) error {
	st := &s.stages[s.front.index]
	job := s.kids.jobs[st.JobName]
	if job == nil || jobFinished(job) || containsReplace(s.replace, job) {
		return nil
	}
	return s.deleteJob(ctx, job, fmt.Sprintf("stage %s failed (%s)", st.Name, st.Reason))
}

func containsReplace(jobs []*batchv1.Job, job *batchv1.Job) bool {
	for _, j := range jobs {
		if j.UID == job.UID {
			return true
		}
	}
	return false
}

// deadlineExceeded fails the frontier stage once the run has outlived
// spec.activeDeadlineSeconds, and otherwise asks to be called back when it
// would.
func (s *runState) deadlineExceeded(st *v1alpha1.StageStatus) bool {
	d := s.cpj.Spec.ActiveDeadlineSeconds
	start := s.cpj.Status.StartTime
	if d == nil || start == nil {
		return false
	}
	left := start.Add(time.Duration(*d) * time.Second).Sub(s.now.Time)
	if left > 0 {
		s.requeue = left
		return false
	}
	st.State = v1alpha1.StageFailed
	st.Reason = v1alpha1.ReasonDeadlineExceeded
	st.Message = fmt.Sprintf("the run exceeded spec.activeDeadlineSeconds (%ds) during stage %s", *d, st.Name)
	st.CompletionTime = &s.now
	return true
}

// suspend holds the frontier: its Job is suspended, or deleted when Kueue
// owns its suspend field (Kueue would otherwise admit it again).
func (s *runState) suspend(ctx context.Context, st *v1alpha1.StageStatus, job *batchv1.Job) error {
	st.State, st.Reason = v1alpha1.StageSuspended, v1alpha1.ReasonSuspended
	switch {
	case job == nil:
		st.Message = fmt.Sprintf("stage %s has not started: spec.suspend is true", st.Name)
		return nil
	case jobFinished(job):
		return nil
	case job.Labels[LabelQueueName] != "":
		st.Message = fmt.Sprintf("deleted Job %s: Kueue owns its suspend field; it is created again on resume", job.Name)
		return s.deleteJob(ctx, job, "the CompressionJob is suspended and Kueue owns the Job's suspend field")
	case ptr.Deref(job.Spec.Suspend, false):
		st.Message = fmt.Sprintf("Job %s is suspended", job.Name)
		return nil
	}
	return s.setJobSuspend(ctx, st, job, true)
}

// setJobSuspend is the one update the controller makes to a Job.
func (s *runState) setJobSuspend(ctx context.Context, st *v1alpha1.StageStatus, job *batchv1.Job, suspend bool) error {
	patch := client.MergeFrom(job.DeepCopy())
	j := job.DeepCopy()
	j.Spec.Suspend = ptr.To(suspend)
	if err := s.r.Client.Patch(ctx, j, patch); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("setting suspend=%t on Job %s: %w", suspend, job.Name, err)
	}
	if suspend {
		st.State, st.Reason, st.Message = v1alpha1.StageSuspended, v1alpha1.ReasonSuspended, fmt.Sprintf("Job %s is suspended", job.Name)
		s.r.event(s.cpj, event{Job: job.Name, Type: corev1.EventTypeNormal, Reason: EventJobSuspended, Action: "SuspendJob", Note: fmt.Sprintf("suspended Job %s of stage %s", job.Name, st.Name)})
	} else {
		st.State, st.Reason, st.Message = v1alpha1.StagePending, v1alpha1.ReasonPending, fmt.Sprintf("Job %s is being resumed", job.Name)
		s.r.event(s.cpj, event{Job: job.Name, Type: corev1.EventTypeNormal, Reason: EventJobResumed, Action: "ResumeJob", Note: fmt.Sprintf("resumed Job %s of stage %s", job.Name, st.Name)})
	}
	return nil
}

// create creates the frontier stage's Job, exposing the storage Secret's
// keys, once preflight allows it.
func (s *runState) create(ctx context.Context, st *v1alpha1.StageStatus) error {
	keys, ok, err := s.preflight(ctx, st)
	if !ok {
		return err
	}
	f := s.front
	return s.createJob(ctx, st, s.cpj, f.index, f.task, f.name, keys)
}

// preflight checks what must hold before a Job of the job is created and
// returns the storage Secret's keys. A job the cluster will not run
// (Admit) stalls before any of its Jobs exists; so does a missing Secret
// or ServiceAccount (looked at again later). ok is false when no Job may
// be created now; st says why.
func (s *runState) preflight(ctx context.Context, st *v1alpha1.StageStatus) (keys []string, ok bool, err error) {
	if fresh, err := s.r.upToDate(ctx, s.cpj); err != nil || !fresh {
		return nil, false, err
	}
	if refused := s.admit(); len(refused) > 0 {
		// The whole spec is checked, so no stage runs of a job a later
		// stage of which the cluster refuses. Not a failed stage: the
		// admin's settings may change, and the next look admits it.
		st.Reason, st.Message = refused[0].Reason, refusalMessage(refused)
		s.stalled = true
		return nil, false, nil
	}
	keys, err = s.secretKeys(ctx)
	if err != nil {
		var nf *secretNotFound
		if errors.As(err, &nf) {
			st.Reason, st.Message = v1alpha1.ReasonSecretNotFound, err.Error()
			s.stalled = true
			s.requeue = minPositive(s.requeue, s.r.SecretRetryInterval)
			return nil, false, nil
		}
		st.Reason, st.Message = v1alpha1.ReasonJobCreateFailed, pipeline.Truncate(err.Error(), pipeline.MaxStatusMessage)
		return nil, false, err
	}
	if stop, err := s.requireServiceAccount(ctx, st); stop {
		return nil, false, err
	}
	return keys, true, nil
}

// admit checks the job (with spec.variants, every variant's spec) against
// what the cluster runs and its admin allows.
func (s *runState) admit() []Refusal {
	if s.sweep == nil {
		return Admit(s.cpj, s.r.Defaults, s.r.Policy)
	}
	var out []Refusal
	seen := map[string]bool{}
	for _, o := range s.sweep.owners {
		for _, r := range Admit(o, s.r.Defaults, s.r.Policy) {
			if !seen[r.Message] {
				seen[r.Message] = true
				out = append(out, r)
			}
		}
	}
	return out
}

// createJob creates the Job of stage index of owner (the CompressionJob,
// or a variant of it) for task: an invalid Job fails the stage, a name
// taken by a Job the job does not own fails it too, and other errors are
// retried.
func (s *runState) createJob(ctx context.Context, st *v1alpha1.StageStatus, owner *v1alpha1.CompressionJob, index int, task pipeline.Task, name string, keys []string) error {
	job, err := BuildJob(StageJob{Owner: owner, Index: index, Task: task, RunHash: s.runHash, SecretKeys: keys}, s.r.Defaults)
	if err == nil {
		err = s.r.Client.Create(ctx, job)
	}
	switch {
	case err == nil:
		s.r.event(s.cpj, event{Job: job.Name, Type: corev1.EventTypeNormal, Reason: EventStageStarted, Action: "CreateJob", Note: fmt.Sprintf("created Job %s for stage %s (%d/%d)", job.Name, st.Name, index+1, len(s.cpj.Spec.Stages))})
	case apierrors.IsAlreadyExists(err):
		return s.alreadyExists(ctx, st, name)
	case apierrors.IsInvalid(err):
		st.State, st.Reason = v1alpha1.StageFailed, v1alpha1.ReasonJobCreateFailed
		st.Message = pipeline.Truncate(fmt.Sprintf("the API server rejected Job %s: %v", name, err), pipeline.MaxStatusMessage)
		st.CompletionTime = &s.now
		return nil
	default:
		st.Reason = v1alpha1.ReasonJobCreateFailed
		st.Message = pipeline.Truncate(fmt.Sprintf("creating Job %s: %v", name, err), pipeline.MaxStatusMessage)
		return err
	}
	// Report the new Job as the next reconcile will see it, so that one
	// does not patch status again.
	*st = observeActive(*st, job, nil, false)
	return nil
}

// alreadyExists handles a Job name that is taken: by this CompressionJob's
// own Job the cache has not shown yet (fine: its event follows), or by a Job
// someone else owns (the stage cannot run).
func (s *runState) alreadyExists(ctx context.Context, st *v1alpha1.StageStatus, name string) error {
	var job batchv1.Job
	if err := s.r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.cpj.Namespace, Name: name}, &job); err != nil {
		return fmt.Errorf("Job %s exists but cannot be read: %w", name, err)
	}
	if !metav1.IsControlledBy(&job, s.cpj) {
		st.State, st.Reason = v1alpha1.StageFailed, v1alpha1.ReasonJobCreateFailed
		st.Message = fmt.Sprintf("a Job named %s already exists and is not controlled by this CompressionJob", name)
		st.CompletionTime = &s.now
		return nil
	}
	*st = observeActive(*st, &job, nil, false)
	return nil
}

type secretNotFound struct{ namespace, name string }

func (e *secretNotFound) Error() string {
	return fmt.Sprintf("Secret %s/%s named by spec.storage.secretRef does not exist; no stage Job is created until it does", e.namespace, e.name)
}

// secretKeys reads the storage Secret's keys with the uncached reader.
func (s *runState) secretKeys(ctx context.Context) ([]string, error) {
	st := s.cpj.Spec.Storage
	if st == nil || st.SecretRef == nil {
		return nil, nil
	}
	var sec corev1.Secret
	err := s.r.APIReader.Get(ctx, types.NamespacedName{Namespace: s.cpj.Namespace, Name: st.SecretRef.Name}, &sec)
	if apierrors.IsNotFound(err) {
		return nil, &secretNotFound{s.cpj.Namespace, st.SecretRef.Name}
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", s.cpj.Namespace, st.SecretRef.Name, err)
	}
	keys := make([]string, 0, len(sec.Data))
	for k := range sec.Data {
		keys = append(keys, k)
	}
	return keys, nil
}

func minPositive(a, b time.Duration) time.Duration {
	if a <= 0 || (b > 0 && b < a) {
		return b
	}
	return a
}
