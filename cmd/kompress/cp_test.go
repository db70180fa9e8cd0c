package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// kompress cp uploads a local file to S3 and prints its digest, leaves an
// object holding the same bytes alone, refuses to overwrite other bytes,
// and downloads an object to a local path.
func TestCp(t *testing.T) {
	s3 := storagetest.StartS3(t, "models")
	dir := t.TempDir()
	model := filepath.Join("..", "..", "config", "samples", "models", "mnist-8.onnx")
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	digest := storage.Digest(data)
	dst := s3.URI("models", "mnist/mnist-8.onnx")

	out, stderr, code := cli(t, "cp", model, dst)
	if code != 0 || !strings.Contains(out, "copied "+model+" to "+dst) || !strings.Contains(out, digest) {
		t.Fatalf("cp to S3: exit %d, stdout %q, stderr %q; want it copied with %s", code, out, stderr, digest)
	}
	if got, err := s3.Object("models", "mnist/mnist-8.onnx"); err != nil || storage.Digest(got) != digest {
		t.Fatalf("the bucket holds %d bytes (%v), not the model", len(got), err)
	}

	out, stderr, code = cli(t, "cp", model, dst)
	if code != 0 || !strings.Contains(out, "already holds") || !strings.Contains(out, digest) {
		t.Errorf("cp of the same bytes again: exit %d, stdout %q, stderr %q; want it left alone", code, out, stderr)
	}

	other := filepath.Join(dir, "other.onnx")
	if err := os.WriteFile(other, []byte("not the model"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = cli(t, "cp", other, dst)
	if code == 0 || !strings.Contains(stderr, "already holds other bytes") || !strings.Contains(stderr, digest) {
		t.Errorf("cp of other bytes over the model: exit %d, stderr %q; want a refusal naming what is there", code, stderr)
	}
	if got, _ := s3.Object("models", "mnist/mnist-8.onnx"); storage.Digest(got) != digest {
		t.Error("the model was overwritten")
	}

	back := filepath.Join(dir, "back", "model.onnx")
	out, stderr, code = cli(t, "cp", dst, back)
	if code != 0 || !strings.Contains(out, digest) {
		t.Fatalf("cp from S3: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if got, err := os.ReadFile(back); err != nil || storage.Digest(got) != digest {
		t.Errorf("the downloaded file is not the model (%v)", err)
	}

	_, stderr, code = cli(t, "cp", s3.URI("models", "missing.onnx"), filepath.Join(dir, "x"))
	if code == 0 || !strings.Contains(stderr, "missing.onnx") {
		t.Errorf("cp of a missing object: exit %d, stderr %q", code, stderr)
	}
	if _, _, code := cli(t, "cp", model); code == 0 {
		t.Errorf("cp with one argument: exit %d", code)
	}
}
