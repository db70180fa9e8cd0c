package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

func TestS3AccessDenied(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "models")
	uri := s3.URI("models", "model.onnx")
	if err := s3.Put("models", "model.onnx", []byte("secret model")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, key, secret string
	}{
		{name: "wrong secret", key: storagetest.AccessKey, secret: "not-the-secret"},
		{name: "unknown key id", key: "someone-else", secret: storagetest.SecretKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", tt.key)
			t.Setenv("AWS_SECRET_ACCESS_KEY", tt.secret)
			_, _, err := storage.ReadAll(ctx, uri, "")
			assertKind(t, err, storage.ErrDenied, uri)
			_, err = storage.Exists(ctx, uri)
			assertKind(t, err, storage.ErrDenied, uri)
			other := s3.URI("models", "new.onnx")
			_, err = storage.WriteBytes(ctx, other, []byte("x"))
			assertKind(t, err, storage.ErrDenied, other)
			if err := storage.Delete(ctx, uri); !errors.Is(err, storage.ErrDenied) {
				t.Errorf("Delete with bad credentials: err = %v, want ErrDenied", err)
			}
			if got, err := s3.Object("models", "model.onnx"); err != nil || string(got) != "secret model" {
				t.Errorf("object after denied calls: %q, %v", got, err)
			}
			if keys, _ := s3.Keys("models"); len(keys) != 1 {
				t.Errorf("denied write stored something: keys %v", keys)
			}
		})
	}
}

func TestS3NoSuchBucket(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "models")
	uri := s3.URI("no-such-bucket", "model.onnx")
	_, _, err := storage.ReadAll(ctx, uri, "")
	assertKind(t, err, storage.ErrNotFound, uri)
	_, err = storage.WriteBytes(ctx, uri, []byte("x"))
	assertKind(t, err, storage.ErrNotFound, uri)
}

// logCapture is a Client whose retry log lines are kept for inspection.
func logCapture(retry storage.Retry) (*storage.Client, *bytes.Buffer) {
	var buf bytes.Buffer
	return &storage.Client{Retry: retry, Logger: slog.New(slog.NewTextHandler(&buf, nil))}, &buf
}

var fastRetry = storage.Retry{Attempts: 5, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}

func TestS3TransientFailuresAreRetried(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "models")
	data := []byte("model after a flaky network")

	t.Run("write", func(t *testing.T) {
		c, log := logCapture(fastRetry)
		uri := s3.URI("models", "w/model.onnx")
		// More failures than the AWS SDK retries inside one call (3
		// attempts), so that this package's own retry has to step in.
		s3.FailNext(4, http.StatusServiceUnavailable)
		obj, err := c.WriteBytes(ctx, uri, data)
		if err != nil {
			t.Fatalf("write through 4 failures: %v", err)
		}
		if obj.Digest != storage.Digest(data) {
			t.Errorf("digest %s, want %s", obj.Digest, storage.Digest(data))
		}
		if got, err := s3.Object("models", "w/model.onnx"); err != nil || !bytes.Equal(got, data) {
			t.Errorf("stored %q, %v", got, err)
		}
		if !strings.Contains(log.String(), "retrying") {
			t.Errorf("no retry was logged; log:\n%s", log)
		}
	})

	t.Run("read", func(t *testing.T) {
		c, log := logCapture(fastRetry)
		uri := s3.URI("models", "w/model.onnx")
		s3.FailNext(4, http.StatusServiceUnavailable)
		got, _, err := c.ReadAll(ctx, uri, storage.Digest(data))
		if err != nil {
			t.Fatalf("read through 4 failures: %v", err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("read %q", got)
		}
		if !strings.Contains(log.String(), "retrying") {
			t.Errorf("no retry was logged; log:\n%s", log)
		}
	})

	t.Run("download", func(t *testing.T) {
		c, log := logCapture(fastRetry)
		path := filepath.Join(t.TempDir(), "model.onnx")
		s3.FailNext(4, http.StatusServiceUnavailable)
		obj, err := c.Download(ctx, s3.URI("models", "w/model.onnx"), storage.Digest(data), path)
		if err != nil {
			t.Fatalf("download through 4 failures: %v", err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) || obj.Digest != storage.Digest(data) || obj.Size != int64(len(data)) {
			t.Errorf("downloaded %q (%v), %+v", got, err, obj)
		}
		if !strings.Contains(log.String(), "retrying") {
			t.Errorf("no retry was logged; log:\n%s", log)
		}
	})

	t.Run("gives up", func(t *testing.T) {
		c, _ := logCapture(storage.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond})
		uri := s3.URI("models", "w/model.onnx")
		s3.FailNext(1000, http.StatusServiceUnavailable)
		defer s3.FailNext(0, 0)
		before := s3.Requests()
		_, _, err := c.ReadAll(ctx, uri, "")
		if err == nil || !strings.Contains(err.Error(), "gave up after 2 attempts") {
			t.Fatalf("err = %v, want a give-up after 2 attempts", err)
		}
		if storage.KindOf(err) != storage.KindFailure {
			t.Errorf("kind %v; want a retryable failure (KindFailure)", storage.KindOf(err))
		}
		// 2 attempts of this package, each of 3 attempts of the SDK
		// (gocloud fixes the SDK's retryer at 3; AWS_MAX_ATTEMPTS is ignored).
		if n := s3.Requests() - before; n != 6 {
			t.Errorf("server saw %d requests, want 6 (bounded retries)", n)
		}
	})

	// Giving up says why there was no retry: a client allowed one
	// attempt, or content that cannot be rewound.
	t.Run("one attempt", func(t *testing.T) {
		s3.FailNext(1000, http.StatusServiceUnavailable)
		defer s3.FailNext(0, 0)
		c, _ := logCapture(storage.Retry{Attempts: 1})
		_, _, err := c.ReadAll(ctx, s3.URI("models", "w/model.onnx"), "")
		if err == nil || !strings.Contains(err.Error(), "gave up after 1 attempt: ") {
			t.Errorf("read with one attempt: err = %v", err)
		}
		c, _ = logCapture(fastRetry)
		_, err = c.Write(ctx, s3.URI("models", "stream/model.onnx"), io.MultiReader(bytes.NewReader(data)))
		if err == nil || !strings.Contains(err.Error(), "not retried (the content cannot be rewound)") {
			t.Errorf("write of a stream: err = %v", err)
		}
	})

	t.Run("not found is not retried", func(t *testing.T) {
		c, log := logCapture(fastRetry)
		before := s3.Requests()
		_, _, err := c.ReadAll(ctx, s3.URI("models", "absent.onnx"), "")
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
		if n := s3.Requests() - before; n != 1 || log.Len() != 0 {
			t.Errorf("a permanent error was retried: %d requests, log %q", n, log)
		}
	})
}

func TestConnectionRefused(t *testing.T) {
	// A port that was just free: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	storagetest.StartS3(t) // credentials in the environment
	uri := "s3://models/model.onnx?endpoint=http://" + addr + "&use_path_style=true&region=us-east-1"
	c, log := logCapture(storage.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Millisecond})
	_, _, err = c.ReadAll(context.Background(), uri, "")
	if err == nil || storage.KindOf(err) != storage.KindFailure || !strings.Contains(err.Error(), "gave up after 2 attempts") {
		t.Fatalf("err = %v, want a retried, then given-up failure", err)
	}
	if !strings.Contains(log.String(), "retrying") {
		t.Errorf("connection refused was not retried; log:\n%s", log)
	}
}

// A write whose response is lost may already be stored: retrying it meets
// the write-once check, which must recognise our own content.
func TestS3LostResponseIsNotAConflict(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t, "models")
	data := bytes.Repeat([]byte("lost response "), 1000)
	tests := []struct {
		name string
		lose int
	}{
		// The SDK's own retry meets the conditional PUT's 412.
		{"sdk retry", 1},
		// The SDK gives up after 3 attempts; this package's retry meets
		// the Exists check.
		{"package retry", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, log := logCapture(fastRetry)
			key := strings.ReplaceAll(tt.name, " ", "-") + "/model.onnx"
			s3.LoseNext(http.MethodPut, tt.lose)
			obj, err := c.WriteBytes(ctx, s3.URI("models", key), data)
			if err != nil {
				t.Fatalf("write with %d lost responses: %v", tt.lose, err)
			}
			if obj.Digest != storage.Digest(data) || obj.Size != int64(len(data)) {
				t.Errorf("object %+v, want digest %s size %d", obj, storage.Digest(data), len(data))
			}
			if got, err := s3.Object("models", key); err != nil || !bytes.Equal(got, data) {
				t.Errorf("stored %d bytes, %v", len(got), err)
			}
			if retried := strings.Contains(log.String(), "retrying"); retried != (tt.lose >= 3) {
				t.Errorf("package-level retry: %v, want %v; log:\n%s", retried, tt.lose >= 3, log)
			}
		})
	}
	// Different content at the key is still a conflict.
	s3.LoseNext("", 0)
	_, err := storage.WriteBytes(ctx, s3.URI("models", "sdk-retry/model.onnx"), []byte("other"))
	if !errors.Is(err, storage.ErrExists) {
		t.Errorf("err = %v, want ErrExists for different content", err)
	}
}
