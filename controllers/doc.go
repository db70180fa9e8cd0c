// Package controllers holds the CompressionJob reconciler: it turns each
// stage of a CompressionJob into a batch/v1 Job, reads the stage's result
// from the finished pod's termination message, and reports the run in
// status, events and metrics. It never opens a model: the plan, the task
// and the result contract live in package pipeline.
//
// # Runs
//
// A run is the execution of one spec. status.runHash identifies it: a hash
// of the spec less spec.suspend, so suspending and resuming continue a run
// while any other spec change starts a new one (new startTime). Within a
// run, a stage that succeeded, was cached or failed stays so, even when its
// Job is garbage-collected (ttlSecondsAfterFinished) or the manager restarts
// with another --runner-version: a finished run is never redone until its
// spec changes. In a new run, a stage whose cache key matches a stage that
// succeeded in the previous run is Cached: its output is reused and no Job
// runs. A failed stage runs again in a new run.
//
// # Jobs
//
// Stage Jobs are named pipeline.JobName(job, index, stage, cacheKey) and
// annotated with the run that created them and a hash of their pod
// template. A new run adopts an earlier run's Job of the same name when it
// completed, or when it is unfinished with the same pod template, backoff
// limit, deadline and queue; it replaces one that failed or whose template
// or settings changed (a scheduling fix for an unschedulable stage, a
// corrected queue name). Jobs that the plan no longer names are deleted,
// with background propagation. Artifacts in storage are never deleted.
// The only update the controller makes to a Job is spec.suspend; with
// spec.scheduling.queueName Kueue owns that field, so Jobs are created
// suspended and never unsuspended, and suspending the CompressionJob
// deletes its queued Job (it is created again on resume).
//
// # Placement
//
// Manager flags, then spec.scheduling, then the stage: node selectors merge
// key by key, tolerations add up, affinity and priority class come from
// spec.scheduling, resources merge per resource name; when a later layer's
// request exceeds an inherited limit the limit rises to it (and a later
// limit below an inherited request lowers the request).
//
// # Reconcile
//
// Fetch, observe Jobs and pods (cached, labelled kompress.dev/job; a
// finished Job's pods and the storage Secret are read from the API server),
// act at the first unfinished stage, compute status in memory, patch it
// once with an optimistic lock. Before creating a Job the reconciler makes
// sure its cached CompressionJob includes its own last status write, so a
// stale copy cannot run a finished stage again. A missing Secret stalls the
// run with SecretNotFound and is looked up again every
// SecretRetryInterval (Secrets are not watched, so the manager does not
// hold the cluster's Secrets in memory).
package controllers
