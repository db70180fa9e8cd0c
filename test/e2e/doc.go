// Package e2e is kompress end to end on a local cluster: a real
// kube-apiserver, etcd, kube-scheduler and kube-controller-manager, Node
// objects for two node pools, a node agent that runs every bound stage pod's
// runner as a local process (package nodeagent), an S3-compatible server on
// loopback behind a fault-injecting proxy (package s3proxy), the Helm chart
// installed into the cluster, the manager running as a process with the
// chart's flags and the chart's RBAC, and Kueue's manager with its CRDs
// (hack/tools.sh kueue) for the jobs that name a queue.
//
// The cluster suite is behind the build tag e2e: `make e2e` (hack/e2e.sh)
// builds the binaries, runs it and tears everything down by PID. The tests
// without the tag (the Argo CD health check over statuses a real run
// produced, the image descriptions against the chart) run with `make test`;
// `make images-test` checks the built images (KOMPRESS_IMAGES).
package e2e
