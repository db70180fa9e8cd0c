//go:build tools

// Package tools pins controller-gen, helm and protoc-gen-go.
package tools

import (
	_ "google.golang.org/protobuf/cmd/protoc-gen-go"
	_ "helm.sh/helm/v3/cmd/helm"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
