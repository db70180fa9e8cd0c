// Package chart tests the Helm chart in charts/kompress and the kustomize
// layout in config/ with the real tools: helm lint and template, kustomize
// (in process), and helm install, upgrade and uninstall against a real
// kube-apiserver started by envtest.
//
// helm comes from the tools cache (`make tools-gen`); kube-apiserver and etcd
// from KUBEBUILDER_ASSETS (`make tools-k8s`). `go test -short` runs only the
// tests that need no API server.
package chart
