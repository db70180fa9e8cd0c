package jobfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every CompressionJob sample the docs point users at must pass the same
// defaulting and validation the API server applies.
func TestSamplesValidate(t *testing.T) {
	files, err := filepath.Glob("../../config/samples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "kind: CompressionJob") {
			continue // kustomization and the like
		}
		if _, err := Parse(data); err != nil {
			t.Errorf("%s: %v", f, err)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no CompressionJob samples found in config/samples")
	}
}
