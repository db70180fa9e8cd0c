// Package controllers holds the CompressionJob reconciler: it turns each
// stage of a CompressionJob into a batch/v1 Job, reads the stage's result
// from the finished pod's termination message, and reports the run in
// status, events and metrics. It never opens a model: the plan, the task
// and the result contract live in package pipeline.
package controllers
