// Package crd embeds the generated CompressionJob CustomResourceDefinition so
// programs without an API server (the local `kompress run`) validate and
// default job files exactly as the API server would.
package crd

import _ "embed"

// CompressionJob is config/crd/bases/kompress.dev_compressionjobs.yaml.
//
//go:embed bases/kompress.dev_compressionjobs.yaml
var CompressionJob []byte
