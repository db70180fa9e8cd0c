// Package nodeagent plays the kubelet for Nodes that have none, for
// end-to-end tests: every pod the scheduler binds to one of them has its
// containers run as local processes, with the command, args and environment
// the kubelet would give them (SecretKeyRef, ConfigMapKeyRef and downward-API
// variables resolved from the API objects, $(VAR) references expanded), the
// container's memory limit enforced like a cgroup would (GOMEMLIMIT, and a
// kill with reason OOMKilled past it), and the pod status written as a
// kubelet writes it: Running, then Succeeded or Failed with each container's
// exit code and termination message. A deleted pod's processes are stopped
// (SIGTERM, then SIGKILL after the grace period) and the pod is removed.
//
// Images cannot be pulled here: an Image maps an image repository to local
// executables that stand in for its file system, and the environment its
// image description sets (build/*.image.json).
package nodeagent
