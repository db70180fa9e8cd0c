//go:build tools

// Package tools pins the Kueue manager the e2e suite runs.
package tools

import _ "sigs.k8s.io/kueue/cmd/kueue"
