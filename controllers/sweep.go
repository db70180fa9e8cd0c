package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
)

// sweepPlan is a reconcile's plan of a job with spec.variants: the sweep
// and, per variant, the CompressionJob its Jobs are built from (the job
// with the variant's spec).
type sweepPlan struct {
	*pipeline.Sweep
	owners []*v1alpha1.CompressionJob
}

// expansions caches the expansion of spec.variants by object and
// generation: each variant is checked by the API server, which need not
// happen on every reconcile of an unchanged spec.
type expansions struct {
	mu sync.Mutex
	m  map[types.NamespacedName]expansion
}

type expansion struct {
	uid        types.UID
	generation int64
	variants   []pipeline.Variant
	err        error
}

// expand returns the variants of cpj's spec; they are shared between
// reconciles and must not be changed. A failure to check them (the API
// server unreachable) is not remembered: the reconcile is retried. The
// lock guards the map only, not the up to MaxVariants dry-run requests:
// other jobs' reconciles do not wait for them, and the workqueue never
// reconciles one key twice at once, so a key is not expanded twice.
func (e *expansions) expand(ctx context.Context, c client.Client, cpj *v1alpha1.CompressionJob) ([]pipeline.Variant, error) {
	key := types.NamespacedName{Namespace: cpj.Namespace, Name: cpj.Name}
	if x, ok := e.get(key); ok && x.uid == cpj.UID && x.generation == cpj.Generation && cpj.Generation != 0 {
		return x.variants, x.err
	}
	v, err := pipeline.ExpandVariants(&cpj.Spec, dryRunCheck(ctx, c, cpj.Namespace))
	if err != nil && !pipeline.IsInvalidVariants(err) {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.m == nil {
		e.m = map[types.NamespacedName]expansion{}
	}
	e.m[key] = expansion{cpj.UID, cpj.Generation, v, err}
	return v, err
}

func (e *expansions) get(key types.NamespacedName) (expansion, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	return x, ok
}

// dryRunCheck checks a variant by creating it with dryRun=All: the API
// server defaults and validates it (OpenAPI schema, CEL rules, admission)
// and stores nothing. Checking in the API server rather than with the
// CRD's schema compiled in, as `kompress run` does, keeps the CEL
// interpreter out of the manager (7 MB of its image); the words are the
// same, since the causes of an Invalid error are the field errors
// `kompress run` prints.
func dryRunCheck(ctx context.Context, c client.Client, namespace string) pipeline.VariantChecker {
	return func(obj map[string]any) (*v1alpha1.CompressionJobSpec, string, error) {
		u := &unstructured.Unstructured{Object: obj}
		u.SetNamespace(namespace)
		u.SetName("")
		u.SetGenerateName("variant-")
		err := c.Create(ctx, u, client.DryRunAll)
		if apierrors.IsInvalid(err) {
			return nil, invalidWords(err), nil
		}
		if err != nil {
			return nil, "", err
		}
		var job v1alpha1.CompressionJob
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &job); err != nil {
			return nil, "", err
		}
		return &job.Spec, "", nil
	}
}

// invalidWords is an Invalid error's field errors as field.ErrorList
// prints them: "field: body", several in brackets.
func invalidWords(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil || len(status.Status().Details.Causes) == 0 {
		return err.Error()
	}
	var errs []error
	for _, c := range status.Status().Details.Causes {
		errs = append(errs, errors.New(c.Field+": "+c.Message))
	}
	return utilerrors.NewAggregate(errs).Error()
}

func (e *expansions) forget(key types.NamespacedName) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// reconcileSweep is reconcile for a job with spec.variants. Its stage runs
// (a stage shared by variants whose chains agree up to it is one run,
// named <stage>/<first variant>) are observed in plan order; each run
// whose parent is done gets its Job, at most spec.variants.maxParallel
// unfinished at once; a failed run fails only the variants through it.
// Once every variant is done, the select step runs as a Job of its own
// (the runner writes the sweep's release.json and report.html; the
// controller never opens storage), and status.output becomes the selected
// variant's model. Everything is written to status in memory; Reconcile
// patches it once.
func (s *runState) reconcileSweep(ctx context.Context) (reconcile.Result, error) {
	st := &s.cpj.Status
	spec := &s.cpj.Spec
	if s.newRun {
		st.RunHash = s.runHash
		st.StartTime = &s.now
		st.CompletionTime = nil
	}
	variants, err := s.r.variants.expand(ctx, s.r.Client, s.cpj)
	if apierrors.IsForbidden(err) {
		return s.variantsUnchecked(err), nil
	}
	if err != nil && !pipeline.IsInvalidVariants(err) {
		return reconcile.Result{}, err
	}
	var sw *pipeline.Sweep
	if err == nil {
		sw, err = pipeline.PlanSweep(spec.Variants, variants)
	}
	if err != nil {
		return s.invalidVariants(ctx, err)
	}
	plan := &sweepPlan{Sweep: sw, owners: make([]*v1alpha1.CompressionJob, len(sw.Variants))}
	for v, vr := range sw.Variants {
		plan.owners[v] = &v1alpha1.CompressionJob{TypeMeta: s.cpj.TypeMeta, ObjectMeta: s.cpj.ObjectMeta, Spec: *vr.Spec}
	}
	s.sweep = plan

	prev := st.Stages
	runs, tasks, names, err := s.observeRuns(ctx, prev)
	if err != nil {
		return reconcile.Result{}, err
	}
	job := s.cpj.Namespace + "/" + s.cpj.Name
	sum := pipeline.SummarizeSweep(job, spec, plan.Sweep, runs, nil, s.r.Defaults.RunnerVersion)
	sel := v1alpha1.StageStatus{Name: pipeline.SelectStep, State: v1alpha1.StagePending, Message: "waits for every variant to finish"}
	if p := findStage(prev, pipeline.SelectStep); p != nil && !s.newRun && settled(p.State) {
		sel = *p.DeepCopy() // failed by the run's deadline before it was due
	}
	var selName string
	if sum.Select != nil {
		selName = pipeline.JobName(s.cpj.Name, len(spec.Stages), pipeline.SelectStep, sum.Select.CacheKey)
		s.planned[selName] = true
		x, oerr := s.observeStage(ctx, s.cpj, len(spec.Stages), *sum.Select, selName, findStage(prev, pipeline.SelectStep))
		if oerr != nil {
			return reconcile.Result{}, oerr
		}
		if x.JobName != "" {
			s.planned[x.JobName] = true
		}
		sel = x
	}

	errs := []error{s.deleteStale(ctx)}
	terminal := pipeline.SummarizeSweep(job, spec, plan.Sweep, runs, &sel, s.r.Defaults.RunnerVersion).Terminal()
	switch {
	case terminal:
	case s.sweepDeadlineExceeded():
		errs = append(errs, s.stopSweep(ctx, runs, &sel))
	case spec.Suspend:
		errs = append(errs, s.suspendSweep(ctx, runs, names, &sel))
	default:
		errs = append(errs, s.actSweep(ctx, runs, tasks, names, sum.Select, &sel, selName))
	}

	final := pipeline.SummarizeSweep(job, spec, plan.Sweep, runs, &sel, s.r.Defaults.RunnerVersion)
	if s.stalled && !final.Terminal() {
		final.Phase = pipeline.PhaseFailed
	}
	st.Stages = append(runs, sel)
	final.Apply(st, s.cpj.Generation, s.now)
	st.ObservedGeneration = s.cpj.Generation
	s.summary = final.Summary
	return reconcile.Result{RequeueAfter: s.requeue}, errors.Join(errs...)
}

// invalidVariants stalls a job whose variants are not valid specs (a value
// its field's own rules refuse) with reason InvalidVariants and the words
// `kompress run` uses; no Job is created, and Jobs of an earlier
// generation are deleted.
func (s *runState) invalidVariants(ctx context.Context, err error) (reconcile.Result, error) {
	st := &s.cpj.Status
	st.Stages, st.Variants, st.Selection = nil, nil, nil
	derr := s.deleteStale(ctx)
	s.summary = pipeline.Summary{Phase: pipeline.PhaseFailed, Reason: v1alpha1.ReasonInvalidVariants,
		Message: pipeline.Truncate(err.Error(), pipeline.MaxStatusMessage)}
	s.summary.Apply(st, s.cpj.Generation, s.now)
	st.ObservedGeneration = s.cpj.Generation
	return reconcile.Result{}, derr
}

// variantsUnchecked says in status why the sweep has not started when the
// API server forbids the dry-run creates that check its variants (a
// ResourceQuota on count/compressionjobs.kompress.dev that the namespace
// has used up, an admission webhook), and retries at the Secret retry
// interval: the quota may be freed. No Job is created meanwhile.
func (s *runState) variantsUnchecked(err error) reconcile.Result {
	s.summary = pipeline.Summary{Phase: pipeline.PhaseInProgress, Reason: v1alpha1.ReasonVariantsUnchecked,
		Message: pipeline.Truncate(fmt.Sprintf("the variants are checked by creating each with dryRun=All, which the API server forbids (retried every %s): %v",
			s.r.SecretRetryInterval, err), pipeline.MaxStatusMessage)}
	s.summary.Apply(&s.cpj.Status, s.cpj.Generation, s.now)
	s.cpj.Status.ObservedGeneration = s.cpj.Generation
	return reconcile.Result{RequeueAfter: s.r.SecretRetryInterval}
}

func isDone(st v1alpha1.StageState) bool {
	return st == v1alpha1.StageSucceeded || st == v1alpha1.StageCached
}

// observeRuns computes every run's status in plan order: a run whose
// parent is not done waits (or never runs, when the parent failed); the
// others are planned (task, Job name) and observed like a chain's stages.
func (s *runState) observeRuns(ctx context.Context, prev []v1alpha1.StageStatus) ([]v1alpha1.StageStatus, []*pipeline.Task, []string, error) {
	sw := s.sweep
	runs := make([]v1alpha1.StageStatus, len(sw.Runs))
	tasks := make([]*pipeline.Task, len(sw.Runs))
	names := make([]string, len(sw.Runs))
	job := s.cpj.Namespace + "/" + s.cpj.Name
	var errs []error
	for r, run := range sw.Runs {
		var input *v1alpha1.Artifact
		if p := run.Parent; p >= 0 {
			switch {
			case runs[p].State == v1alpha1.StageFailed:
				runs[r] = v1alpha1.StageStatus{Name: run.Name, State: v1alpha1.StagePending, Message: "not run: stage " + runs[p].Name + " failed"}
				continue
			case !isDone(runs[p].State):
				runs[r] = v1alpha1.StageStatus{Name: run.Name, State: v1alpha1.StagePending, Message: "waits for stage " + runs[p].Name}
				continue
			}
			input = runs[p].Output
		}
		task, err := sw.RunTask(job, r, input, runs, s.r.Defaults.RunnerVersion)
		if err != nil {
			runs[r] = v1alpha1.StageStatus{Name: run.Name, State: v1alpha1.StageFailed, Reason: v1alpha1.ReasonBadInput,
				Message: pipeline.Truncate(err.Error(), pipeline.MaxStatusMessage)}
			continue
		}
		name := pipeline.JobName(s.cpj.Name, run.Index, run.Stage, task.CacheKey)
		s.planned[name] = true
		st, err := s.observeStage(ctx, sw.owners[run.Variants[0]], run.Index, task, name, findStage(prev, run.Name))
		errs = append(errs, err)
		if st.JobName != "" {
			s.planned[st.JobName] = true
		}
		// The status is the run's, under the run's name.
		st.Name = run.Name
		runs[r], tasks[r], names[r] = st, &task, name
	}
	return runs, tasks, names, errors.Join(errs...)
}

// unfinishedJob is the run's Job when it exists and has not finished.
func (s *runState) unfinishedJob(name string) *batchv1.Job {
	if job := s.kids.jobs[name]; job != nil && !jobFinished(job) {
		return job
	}
	return nil
}

// actSweep creates the Jobs of the runs that may start, in plan order,
// while fewer than spec.variants.maxParallel are unfinished, then the
// select step's once every variant is done; and resumes Jobs it
// suspended.
func (s *runState) actSweep(ctx context.Context, runs []v1alpha1.StageStatus, tasks []*pipeline.Task, names []string, selTask *pipeline.Task, sel *v1alpha1.StageStatus, selName string) error {
	active := 0
	for r := range runs {
		if names[r] != "" && !settled(runs[r].State) && s.unfinishedJob(names[r]) != nil {
			active++
		}
	}
	limit := int(s.cpj.Spec.Variants.MaxParallel)
	if limit <= 0 {
		limit = 4
	}
	var keys []string
	checked := false
	var errs []error
	try := func(st *v1alpha1.StageStatus, owner *v1alpha1.CompressionJob, index int, task pipeline.Task, name string) bool {
		if job := s.kids.jobs[name]; job != nil {
			if containsReplace(s.replace, job) {
				return true // wait for the old Job to go before creating its successor
			}
			if ptr.Deref(job.Spec.Suspend, false) && job.Labels[LabelQueueName] == "" && !jobFinished(job) {
				errs = append(errs, s.setJobSuspend(ctx, st, job, false))
			}
			return true
		}
		if active >= limit {
			st.Message = fmt.Sprintf("waits for one of the %d stage Jobs running at once (spec.variants.maxParallel)", limit)
			return true
		}
		if !checked {
			var ok bool
			var err error
			keys, ok, err = s.preflight(ctx, st)
			if !ok {
				errs = append(errs, err)
				return false
			}
			checked = true
		}
		errs = append(errs, s.createJob(ctx, st, owner, index, task, name, keys))
		active++
		return true
	}
	for r, run := range s.sweep.Runs {
		if tasks[r] == nil || settled(runs[r].State) {
			continue
		}
		if !try(&runs[r], s.sweep.owners[run.Variants[0]], run.Index, *tasks[r], names[r]) {
			return errors.Join(errs...)
		}
	}
	if selTask != nil && !settled(sel.State) {
		try(sel, s.cpj, len(s.cpj.Spec.Stages), *selTask, selName)
	}
	return errors.Join(errs...)
}

// suspendSweep holds every run that has started or could: its Job is
// suspended, or deleted when Kueue owns its suspend field.
func (s *runState) suspendSweep(ctx context.Context, runs []v1alpha1.StageStatus, names []string, sel *v1alpha1.StageStatus) error {
	var errs []error
	for r := range runs {
		if names[r] == "" || settled(runs[r].State) {
			continue
		}
		errs = append(errs, s.suspend(ctx, &runs[r], s.kids.jobs[names[r]]))
	}
	if !settled(sel.State) && sel.CacheKey != "" {
		errs = append(errs, s.suspend(ctx, sel, s.kids.jobs[sel.JobName]))
	}
	return errors.Join(errs...)
}

// sweepDeadlineExceeded reports whether the run has outlived
// spec.activeDeadlineSeconds, and otherwise asks to be called back when it
// would.
func (s *runState) sweepDeadlineExceeded() bool {
	d := s.cpj.Spec.ActiveDeadlineSeconds
	start := s.cpj.Status.StartTime
	if d == nil || start == nil {
		return false
	}
	left := start.Add(time.Duration(*d) * time.Second).Sub(s.now.Time)
	if left > 0 {
		s.requeue = minPositive(s.requeue, left)
		return false
	}
	return true
}

// stopSweep fails every run that has not finished (whether it started or
// not) and the select step with reason DeadlineExceeded, and deletes
// their Jobs.
func (s *runState) stopSweep(ctx context.Context, runs []v1alpha1.StageStatus, sel *v1alpha1.StageStatus) error {
	msg := fmt.Sprintf("the run exceeded spec.activeDeadlineSeconds (%ds)", *s.cpj.Spec.ActiveDeadlineSeconds)
	var errs []error
	stop := func(st *v1alpha1.StageStatus) {
		if settled(st.State) {
			return
		}
		if job := s.unfinishedJob(st.JobName); job != nil && !containsReplace(s.replace, job) {
			errs = append(errs, s.deleteJob(ctx, job, msg))
		}
		st.State, st.Reason, st.Message = v1alpha1.StageFailed, v1alpha1.ReasonDeadlineExceeded, msg+" before stage "+st.Name+" finished"
		now := s.now
		st.CompletionTime = &now
	}
	for r := range runs {
		stop(&runs[r])
	}
	stop(sel)
	return errors.Join(errs...)
}
