package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// racingReader streams data and, halfway through, lets another writer
// store the same key: the pre-write Exists check has passed by then, so
// only the conditional commit (IfNotExist) can refuse the overwrite.
type racingReader struct {
	data  []byte
	off   int
	raced bool
	race  func() error
	err   error
}

func (r *racingReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if !r.raced && r.off >= len(r.data)/2 {
		r.raced = true
		r.err = r.race()
	}
	n := copy(p[:min(len(p), 4096)], r.data[r.off:])
	r.off += n
	return n, nil
}

func TestConcurrentWriterIsNotOverwritten(t *testing.T) {
	ctx := context.Background()
	ours := bytes.Repeat([]byte("ours "), 100000)
	theirs := []byte("the other writer's model")
	s3 := storagetest.StartS3(t, "models")
	gcs := storagetest.StartGCS(t, "models")
	dir := t.TempDir()
	tests := []struct {
		name string
		uri  string
		race func() error
	}{
		{
			name: "s3",
			uri:  s3.URI("models", "k/model.onnx"),
			race: func() error { return s3.Put("models", "k/model.onnx", theirs) },
		},
		{
			name: "gs",
			uri:  gcs.URI("models", "k/model.onnx"),
			race: func() error { gcs.Put("models", "k/model.onnx", theirs); return nil },
		},
		{
			name: "file",
			uri:  storage.FileURI(filepath.Join(dir, "k", "model.onnx")),
			race: func() error { return os.WriteFile(filepath.Join(dir, "k", "model.onnx"), theirs, 0o644) },
		},
		{
			name: "mem",
			uri:  "mem://race/k/model.onnx",
			race: func() error {
				_, err := (&storage.Client{}).WriteBytes(ctx, "mem://race/k/model.onnx", theirs)
				return err
			},
		},
	}
	if !testing.Short() || storagetest.HaveAzurite() {
		az := storagetest.StartAzurite(t, "models")
		tests = append(tests, struct {
			name string
			uri  string
			race func() error
		}{
			name: "azblob",
			uri:  az.URI("models", "k/model.onnx"),
			race: func() error { return az.Put("models", "k/model.onnx", theirs) },
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &racingReader{data: ours, race: tt.race}
			_, err := storage.Write(ctx, tt.uri, r)
			if r.err != nil {
				t.Fatalf("the concurrent write failed: %v", r.err)
			}
			if !r.raced {
				t.Fatal("the concurrent write never ran")
			}
			if !errors.Is(err, storage.ErrExists) {
				t.Fatalf("err = %v, want ErrExists from the conditional commit", err)
			}
			got, _, err := storage.ReadAll(ctx, tt.uri, "")
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, theirs) {
				t.Errorf("the other writer's object was replaced (%d bytes now)", len(got))
			}
		})
	}
}
