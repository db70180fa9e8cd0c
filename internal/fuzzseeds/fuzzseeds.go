// Package fuzzseeds keeps committed fuzz seed corpora (and other files a
// test generates) in step with the code that builds them, for the
// packages that fuzz: runner/onnx and runner/dataset.
package fuzzseeds

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// CorpusFile is data in the format of Go's fuzzing corpus files.
func CorpusFile(data []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data)
}

// Sync checks that the files want (path → bytes) exist with those bytes
// and that none of have (the generated files found on disk) is no longer
// wanted; with update it first removes have and writes want. rerun is the
// command that rewrites them, for the messages. It also checks that
// testdata/fuzz takes at most maxBytes. Files the fuzzer added
// (crashers, not in have) are left alone.
func Sync(t *testing.T, want map[string][]byte, have []string, update bool, rerun string, maxBytes int64) {
	t.Helper()
	if update {
		for _, p := range have {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
		for p, b := range want {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, p := range have {
		if _, ok := want[p]; !ok && !update {
			t.Errorf("%s is no longer generated: run %s", p, rerun)
		}
	}
	paths := make([]string, 0, len(want))
	for p := range want {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(b, want[p]) {
			t.Errorf("%s is missing or stale (%v): run %s", p, err, rerun)
		}
	}
	var total int64
	all, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	for _, p := range all {
		if st, err := os.Stat(p); err == nil {
			total += st.Size()
		}
	}
	if total > maxBytes {
		t.Errorf("the fuzz corpora take %d bytes, more than %d: keep the committed seeds small", total, maxBytes)
	}
}
