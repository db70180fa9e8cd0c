package local

import (
	"context"
	"errors"
	"runtime"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/pipeline/jobfile"
	"github.com/kompress/kompress/runner"
	"github.com/kompress/kompress/runner/panics"
)

// runSweep runs every variant of spec.variants with a pool of
// spec.variants.maxParallel workers, as the controller runs them as Jobs:
// a stage run shared by several variants runs once, a run starts when its
// parent is done, a failed run fails only the variants through it. Then
// the select step runs, and the status is summarized by the functions the
// controller uses.
func runSweep(ctx context.Context, job *v1alpha1.CompressionJob, opts runner.Options) (*v1alpha1.CompressionJob, error) {
	spec := &job.Spec
	st := &job.Status
	variants, err := jobfile.ExpandVariants(spec)
	if err != nil {
		return job, runner.BadTask(err)
	}
	sw, err := pipeline.PlanSweep(spec.Variants, variants)
	if err != nil {
		return job, runner.BadTask(err)
	}
	runs := make([]v1alpha1.StageStatus, len(sw.Runs))
	for r, run := range sw.Runs {
		runs[r] = v1alpha1.StageStatus{Name: run.Name, State: v1alpha1.StagePending}
	}
	workers := max(1, int(spec.Variants.MaxParallel))
	if workers > 1 && opts.Threads == 0 {
		// Each stage would use every core for ONNX Runtime: share them.
		opts.Threads = max(1, runtime.GOMAXPROCS(0)/workers)
	}
	errs := make([]error, len(sw.Runs))
	if !spec.Suspend {
		schedule(ctx, job, sw, runs, errs, workers, opts)
	}

	name := jobName(job)
	sum := pipeline.SummarizeSweep(name, spec, sw, runs, nil, pipeline.Version)
	var sel *v1alpha1.StageStatus
	if sum.Select != nil && !spec.Suspend {
		s := v1alpha1.StageStatus{Name: pipeline.SelectStep, State: v1alpha1.StageRunning, Attempts: 1, StartTime: ptrNow(), CacheKey: sum.Select.CacheKey}
		res, rerr := runner.Execute(ctx, *sum.Select, opts)
		s = pipeline.StageStatusFromResult(s, *sum.Select, res)
		s.CompletionTime = ptrNow()
		sel = &s
		sum = pipeline.SummarizeSweep(name, spec, sw, runs, sel, pipeline.Version)
		if rerr != nil {
			errs = append(errs, rerr)
		}
	}
	st.Stages = append(runs, v1alpha1.StageStatus{Name: pipeline.SelectStep, State: v1alpha1.StagePending})
	if sel != nil {
		st.Stages[len(runs)] = *sel
	}
	sum.Apply(st, job.Generation, metav1.Now())
	st.ObservedGeneration = job.Generation
	st.RunHash = pipeline.RunHash(spec)
	switch {
	case spec.Suspend:
		return job, nil
	case sum.Phase == pipeline.PhaseSucceeded:
		return job, nil
	case sum.Phase == pipeline.PhaseFailed:
		// Exit with the first failure's code when nothing else is at fault
		// (no variant produced a model); a missed gate is the input's fault.
		code := pipeline.ExitBadInput
		if sum.Reason != v1alpha1.ReasonQualityGateFailed {
			for _, e := range errs {
				if e != nil {
					code = runner.ExitCode(e)
					break
				}
			}
		}
		return job, &runner.Error{Code: code, Reason: sum.Reason, Err: errors.New(sum.Message)}
	}
	return job, errors.New("the sweep ended without a selection: " + sum.Message)
}

// schedule runs the sweep's stage runs on a pool of workers, each as soon
// as its parent is done, until none is left that can run.
func schedule(ctx context.Context, job *v1alpha1.CompressionJob, sw *pipeline.Sweep, runs []v1alpha1.StageStatus, errs []error, workers int, opts runner.Options) {
	var mu sync.Mutex
	cond := sync.NewCond(&mu)
	started := make([]bool, len(sw.Runs))
	active := 0
	ready := func() int {
		for r, run := range sw.Runs {
			if started[r] {
				continue
			}
			if run.Parent < 0 || runs[run.Parent].State == v1alpha1.StageSucceeded || runs[run.Parent].State == v1alpha1.StageCached {
				return r
			}
		}
		return -1
	}
	// A run's panic is raised again by Wait, on this goroutine, once the
	// others are done (deferred first, so it runs after the Unlock).
	var g panics.Group
	defer g.Wait()
	mu.Lock()
	defer mu.Unlock()
	for {
		r := ready()
		for r < 0 || active >= workers {
			if r < 0 && active == 0 {
				return
			}
			cond.Wait()
			r = ready()
		}
		if ctx.Err() != nil && active == 0 {
			return
		}
		started[r] = true
		active++
		var input *v1alpha1.Artifact
		if p := sw.Runs[r].Parent; p >= 0 {
			input = runs[p].Output
		}
		chain := append([]v1alpha1.StageStatus(nil), runs...)
		task, terr := sw.RunTask(jobName(job), r, input, chain, pipeline.Version)
		runs[r].State, runs[r].StartTime, runs[r].Attempts = v1alpha1.StageRunning, ptrNow(), 1
		g.Go(func() {
			s, err := runs[r], error(nil)
			defer func() { // also when execRun panics: the loop must not wait for it
				mu.Lock()
				runs[r], errs[r] = s, err
				active--
				cond.Broadcast()
				mu.Unlock()
			}()
			s, err = execRun(ctx, s, task, terr, progressAs(sw.Runs[r].Name, opts))
		})
	}
}

// execRun executes one planned stage run and returns its status.
func execRun(ctx context.Context, s v1alpha1.StageStatus, task pipeline.Task, planErr error, opts runner.Options) (v1alpha1.StageStatus, error) {
	if planErr != nil {
		return failed(s, planErr), runner.BadTask(planErr)
	}
	s.CacheKey = task.CacheKey
	res, err := runner.Execute(ctx, task, opts)
	s = pipeline.StageStatusFromResult(s, task, res)
	s.CompletionTime = ptrNow()
	if err == nil && s.State == v1alpha1.StageFailed {
		err = errors.New(s.Message)
	}
	return s, err
}

// progressAs reports a run's progress under its own name (prune/v2), so
// runs of the same stage in parallel tell apart.
func progressAs(name string, opts runner.Options) runner.Options {
	if opts.Progress == nil {
		return opts
	}
	p := opts.Progress
	opts.Progress = func(e runner.Event) {
		e.Stage = name
		p(e)
	}
	return opts
}

func ptrNow() *metav1.Time {
	t := metav1.Now()
	return &t
}
