package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
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

// TestFileWriteOnceHasOneWinner races writers of different content on one
// file:// key, round after round: exactly one must win each round, and
// the stored bytes must be the winner's (a stat-then-rename commit let
// two writers both report success).
func TestFileWriteOnceHasOneWinner(t *testing.T) {
	const writers, rounds = 8, 200
	dir := t.TempDir()
	ctx := context.Background()
	for round := range rounds {
		uri := storage.FileURI(filepath.Join(dir, fmt.Sprint(round), "model.onnx"))
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			winner []string
		)
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				obj, err := (&storage.Client{}).WriteBytes(ctx, uri, bytes.Repeat([]byte(fmt.Sprintf("writer %d of round %d ", w, round)), 4096))
				if errors.Is(err, storage.ErrExists) {
					return
				}
				if err != nil {
					t.Errorf("round %d writer %d: %v", round, w, err)
					return
				}
				mu.Lock()
				winner = append(winner, obj.Digest)
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if len(winner) != 1 {
			t.Fatalf("round %d: %d writers won, want exactly 1", round, len(winner))
		}
		_, obj, err := storage.ReadAll(ctx, uri, "")
		if err != nil {
			t.Fatal(err)
		}
		if obj.Digest != winner[0] {
			t.Fatalf("round %d: stored %s, the winner wrote %s", round, obj.Digest, winner[0])
		}
		entries, _ := os.ReadDir(filepath.Dir(filepath.Join(dir, fmt.Sprint(round), "model.onnx")))
		if len(entries) != 1 {
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			t.Fatalf("round %d: the directory holds %q, want only model.onnx (no temporary files left)", round, names)
		}
	}
}
