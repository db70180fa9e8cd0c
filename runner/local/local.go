// Package local runs a whole CompressionJob on this machine, in process,
// through the same pipeline plan the controller follows: each stage's task
// is planned by pipeline.NewTask, executed by runner.Execute, and folded into
// a status by the pipeline functions the controller uses, so the status
// printed here is the status the controller would write.
package local

import (
	"context"
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner"
)

// Run executes every stage of job in order (with spec.variants, every
// variant's, see runSweep) and returns the job with its status filled in. The error is the failing stage's, or a missed quality
// gate's (runner.ExitCode gives its exit code); the status explains it
// either way.
func Run(ctx context.Context, job *v1alpha1.CompressionJob, opts runner.Options) (*v1alpha1.CompressionJob, error) {
	job = job.DeepCopy()
	if job.Generation == 0 {
		job.Generation = 1
	}
	spec := &job.Spec
	st := &job.Status
	started := metav1.Now()
	st.StartTime = &started
	st.Stages = nil
	if spec.Variants != nil {
		return runSweep(ctx, job, opts)
	}

	var prev *v1alpha1.Artifact
	var failure error
	for i := range spec.Stages {
		if spec.Suspend {
			break
		}
		s, err := runStage(ctx, job, i, prev, opts)
		st.Stages = append(st.Stages, s)
		if err != nil {
			failure = err
			break
		}
		prev = s.Output
	}
	for _, stage := range spec.Stages[len(st.Stages):] {
		st.Stages = append(st.Stages, v1alpha1.StageStatus{Name: stage.Name, State: v1alpha1.StagePending})
	}
	sum := pipeline.Summarize(spec, st.Stages)
	sum.Apply(st, job.Generation, metav1.Now())
	st.ObservedGeneration = job.Generation
	st.RunHash = pipeline.RunHash(spec)
	if failure == nil && sum.Phase == pipeline.PhaseFailed {
		// Every stage ran, but the final model missed spec.acceptance:
		// the run failed as the controller reports it (Stalled).
		failure = &runner.Error{Code: pipeline.ExitBadInput, Reason: sum.Reason, Err: errors.New(sum.Message)}
	}
	if failure == nil && st.Output == nil && !spec.Suspend {
		failure = errors.New("the run ended without an output")
	}
	return job, failure
}

// runStage plans and executes stage i, returning its status.
func runStage(ctx context.Context, job *v1alpha1.CompressionJob, i int, prev *v1alpha1.Artifact, opts runner.Options) (v1alpha1.StageStatus, error) {
	name := job.Spec.Stages[i].Name
	s := v1alpha1.StageStatus{Name: name, State: v1alpha1.StageRunning, Attempts: 1}
	now := metav1.Now()
	s.StartTime = &now
	in, err := pipeline.StageInput(&job.Spec, i, prev)
	if err != nil {
		return failed(s, err), err
	}
	task, err := pipeline.NewTask(jobName(job), &job.Spec, i, in, pipeline.Version)
	if err != nil {
		return failed(s, err), runner.BadTask(err)
	}
	task.SetChain(&job.Spec, job.Status.Stages) // for release.json
	s.CacheKey = task.CacheKey
	res, err := runner.Execute(ctx, task, opts)
	s = pipeline.StageStatusFromResult(s, task, res)
	done := metav1.Now()
	s.CompletionTime = &done
	if err == nil && s.State == v1alpha1.StageFailed {
		err = errors.New(s.Message)
	}
	return s, err
}

func failed(s v1alpha1.StageStatus, err error) v1alpha1.StageStatus {
	s.State = v1alpha1.StageFailed
	s.Reason = runner.Reason(err)
	s.Message = pipeline.Truncate(err.Error(), pipeline.MaxStatusMessage)
	return s
}

func jobName(job *v1alpha1.CompressionJob) string {
	if job.Namespace == "" {
		return job.Name
	}
	return job.Namespace + "/" + job.Name
}
