// Package pipeline is the contract between the controller and the runner:
// the plan of a CompressionJob (stage order, cache keys, artifact URIs, Job
// names), the task a stage pod receives and the result it returns. It holds
// no Kubernetes client and never opens a model, so the in-cluster path and
// the local `kompress run` execute the same plan.
package pipeline
