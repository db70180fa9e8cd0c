// Package runner executes one stage task: it reads the input model and the
// dataset from object storage, runs the stage's transform, proves the result
// loads and runs in ONNX Runtime while measuring it, and publishes the model
// and result.json write-once under the task's cache key. A Custom stage's
// command does all of that itself (see docs/custom-stages.md): the runner
// only reads back and checks the result.json it wrote, so ONNX Runtime has
// not proven that model. It is what `kompress stage` runs inside a pod and
// what `kompress run` runs locally. It never talks to the Kubernetes API.
package runner
