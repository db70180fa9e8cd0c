package onnx

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A file written in writes of every size, those hashed beside the write
// included, reports the size and sha256 of the bytes it holds.
func TestHashedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	hf, err := createHashed(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{10, parallelHashMin, 3, 5*parallelHashMin + 7, parallelHashMin - 1, 0} {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j*31)
		}
		if _, err := hf.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := hf.close()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := SavedFile{Path: path, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-the file +reported):\n%s", diff)
	}
}
