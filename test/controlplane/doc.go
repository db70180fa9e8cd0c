// Package controlplane starts a local Kubernetes control plane for tests:
// kube-apiserver and etcd through controller-runtime's envtest, optionally a
// real kube-scheduler and kube-controller-manager, Node objects that stand
// in for node pools, and helpers that play the kubelet for pods bound to
// them. The binaries come from KUBEBUILDER_ASSETS (`make tools-k8s` builds
// them into ~/.cache/kompress/k8s-v1.37.2).
package controlplane
