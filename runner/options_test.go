package runner

import (
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline/jobfile"
)

// defaulted decodes a CompressionJob with the given stages (a YAML list,
// indented for spec.stages) the way kubectl apply and kompress run do:
// the CRD's defaults applied, its validation passed.
func defaulted(t *testing.T, stages string) *v1alpha1.CompressionJob {
	t.Helper()
	job, err := jobfile.Decode([]byte(`
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: defaults}
spec:
  source: {uri: "file://./m.onnx"}
  output: {uri: "file://./out"}
  stages:
` + stages))
	if err != nil {
		t.Fatal(err)
	}
	return job
}

// errString is err's message, or "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
