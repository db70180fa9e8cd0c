package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// backend is one place to store objects, with a way to look underneath the
// storage package at what is really there.
type backend struct {
	name string
	// uri returns the URI of key.
	uri func(key string) string
	// visible lists every stored name under the test's root, including any
	// temporary or partial object a failed write might have left.
	visible func(t *testing.T) []string
}

// backends starts loopback S3, GCS and Azure Blob servers and prepares a
// temporary directory and a fresh mem:// bucket.
func backends(t *testing.T) []backend {
	s3 := storagetest.StartS3(t, "models")
	gcs := storagetest.StartGCS(t, "models")
	dir := t.TempDir()
	mem := "test-" + strings.ReplaceAll(t.Name(), "/", "-")
	bs := []backend{
		{
			name: "s3",
			uri:  func(key string) string { return s3.URI("models", key) },
			visible: func(t *testing.T) []string {
				keys, err := s3.Keys("models")
				if err != nil {
					t.Fatal(err)
				}
				return keys
			},
		},
		{
			name: "gs",
			uri:  func(key string) string { return gcs.URI("models", key) },
			visible: func(t *testing.T) []string {
				keys, err := gcs.Keys("models")
				if err != nil {
					t.Fatal(err)
				}
				return keys
			},
		},
		{
			name: "file",
			uri:  func(key string) string { return storage.FileURI(filepath.Join(dir, key)) },
			visible: func(t *testing.T) []string {
				var names []string
				err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
					if err == nil && !d.IsDir() {
						rel, _ := filepath.Rel(dir, p)
						names = append(names, rel)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return names
			},
		},
		{
			name: "mem",
			uri:  func(key string) string { return "mem://" + mem + "/" + key },
			visible: func(t *testing.T) []string {
				// mem buckets have no side door; Exists on the keys the
				// tests use is the check.
				return nil
			},
		},
	}
	if testing.Short() && !storagetest.HaveAzurite() {
		t.Log("azblob:// not tested: Azurite is not installed (hack/data.sh azurite)")
		return bs
	}
	az := storagetest.StartAzurite(t, "models")
	return append(bs, backend{
		name: "azblob",
		uri:  func(key string) string { return az.URI("models", key) },
		visible: func(t *testing.T) []string {
			keys, err := az.Keys("models")
			if err != nil {
				t.Fatal(err)
			}
			return keys
		},
	})
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	data := bytes.Repeat([]byte("kompress model bytes "), 5000)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("job/abc/model.onnx")
			obj, err := storage.WriteBytes(ctx, uri, data)
			if err != nil {
				t.Fatal(err)
			}
			want := storage.Object{URI: uri, Digest: storage.Digest(data), Size: int64(len(data))}
			if d := cmp.Diff(want, obj); d != "" {
				t.Errorf("WriteBytes object (-want +got):\n%s", d)
			}

			got, robj, err := storage.ReadAll(ctx, uri, obj.Digest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("ReadAll returned %d bytes, not what was written (%d)", len(got), len(data))
			}
			if d := cmp.Diff(want, robj); d != "" {
				t.Errorf("ReadAll object (-want +got):\n%s", d)
			}

			// A pin without the sha256: prefix is accepted too.
			r, err := storage.Read(ctx, uri, strings.TrimPrefix(obj.Digest, "sha256:"))
			if err != nil {
				t.Fatal(err)
			}
			streamed, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(streamed, data) || r.Digest() != obj.Digest || r.Size() != int64(len(data)) {
				t.Errorf("streamed %d bytes, digest %s, size %d; want %d bytes, %s", len(streamed), r.Digest(), r.Size(), len(data), obj.Digest)
			}

			attrs, err := storage.Stat(ctx, uri)
			if err != nil {
				t.Fatal(err)
			}
			if attrs.Size != int64(len(data)) || attrs.ModTime.IsZero() {
				t.Errorf("Stat = %+v, want size %d and a modification time", attrs, len(data))
			}
			assertExists(t, uri, true)
			assertExists(t, b.uri("job/abc/other.onnx"), false)
		})
	}
}

func TestPinnedDigestMismatch(t *testing.T) {
	ctx := context.Background()
	wrong := "sha256:" + strings.Repeat("0", 64)
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("model.onnx")
			obj, err := storage.WriteBytes(ctx, uri, []byte("real content"))
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = storage.ReadAll(ctx, uri, wrong)
			assertMismatch(t, err, uri, wrong, obj.Digest)

			// A download of other content than pinned leaves no file.
			path := filepath.Join(t.TempDir(), "model.onnx")
			_, err = storage.Default.Download(ctx, uri, wrong, path)
			assertMismatch(t, err, uri, wrong, obj.Digest)
			if _, serr := os.Stat(path); !os.IsNotExist(serr) {
				t.Errorf("a download refused by its digest left %s: %v", path, serr)
			}

			r, err := storage.Read(ctx, uri, wrong)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = io.ReadAll(r)
			assertMismatch(t, err, uri, wrong, obj.Digest)
		})
	}
}

func assertMismatch(t *testing.T, err error, uri, want, got string) {
	t.Helper()
	if !errors.Is(err, storage.ErrDigestMismatch) {
		t.Fatalf("err = %v, want a digest mismatch", err)
	}
	for _, s := range []string{uri, want, got} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}

func TestWriteOnce(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("cache/key/model.onnx")
			first, err := storage.WriteBytes(ctx, uri, []byte("first"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = storage.WriteBytes(ctx, uri, []byte("second, different"))
			if !errors.Is(err, storage.ErrExists) {
				t.Fatalf("second write: err = %v, want ErrExists", err)
			}
			if !strings.Contains(err.Error(), uri) {
				t.Errorf("error %q does not name the URI", err)
			}
			got, obj, err := storage.ReadAll(ctx, uri, "")
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "first" || obj.Digest != first.Digest {
				t.Errorf("after a refused overwrite the object holds %q (%s), want %q (%s)", got, obj.Digest, "first", first.Digest)
			}
		})
	}
}

// cancellingReader yields data and cancels the write's context once half of
// it has been read, then keeps going to the end.
type cancellingReader struct {
	data   []byte
	off    int
	cancel context.CancelFunc
}

func (r *cancellingReader) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.off >= len(r.data)/2 {
		r.cancel()
	}
	n := copy(p[:min(len(p), 4096)], r.data[r.off:])
	r.off += n
	return n, nil
}

// failingReader yields some data, then fails.
type failingReader struct{ n int }

var errSource = errors.New("source broke")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errSource
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestFailedWriteLeavesNothing(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 1<<20)
	for _, b := range backends(t) {
		t.Run(b.name+"/cancelled", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			uri := b.uri("cancelled/model.onnx")
			_, err := storage.Write(ctx, uri, &cancellingReader{data: data, cancel: cancel})
			if err == nil {
				t.Fatal("a write whose context was cancelled succeeded")
			}
			assertExists(t, uri, false)
			if names := b.visible(t); len(names) != 0 {
				t.Errorf("a cancelled write left %v behind", names)
			}
		})
		t.Run(b.name+"/source-error", func(t *testing.T) {
			uri := b.uri("broken/model.onnx")
			_, err := storage.Write(context.Background(), uri, &failingReader{n: 100000})
			if !errors.Is(err, errSource) || !strings.Contains(err.Error(), uri) {
				t.Fatalf("err = %v, want the source's error, naming the URI", err)
			}
			assertExists(t, uri, false)
			if names := b.visible(t); len(names) != 0 {
				t.Errorf("a failed write left %v behind", names)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("missing/model.onnx")
			_, _, err := storage.ReadAll(ctx, uri, "")
			assertKind(t, err, storage.ErrNotFound, uri)
			_, err = storage.Read(ctx, uri, "")
			assertKind(t, err, storage.ErrNotFound, uri)
			_, err = storage.Stat(ctx, uri)
			assertKind(t, err, storage.ErrNotFound, uri)
		})
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("tmp/model.onnx")
			if _, err := storage.WriteBytes(ctx, uri, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := storage.Delete(ctx, uri); err != nil {
				t.Fatal(err)
			}
			assertExists(t, uri, false)
			// Deleting what is gone succeeds: cleanup is idempotent.
			if err := storage.Delete(ctx, uri); err != nil {
				t.Errorf("second delete: %v", err)
			}
			if err := storage.Delete(ctx, b.uri("never/was/here.onnx")); err != nil {
				t.Errorf("delete of a missing object: %v", err)
			}
			// After a delete the key can be written again.
			if _, err := storage.WriteBytes(ctx, uri, []byte("y")); err != nil {
				t.Errorf("rewrite after delete: %v", err)
			}
		})
	}
}

func TestMemBucketsAreSharedInProcess(t *testing.T) {
	ctx := context.Background()
	if _, err := storage.WriteBytes(ctx, "mem://shared/a/model.onnx", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// A separate client, as another stage of the local pipeline would use.
	got, _, err := (&storage.Client{}).ReadAll(ctx, "mem://shared/a/model.onnx", "")
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back from another client: %q, %v", got, err)
	}
	assertExists(t, "mem://other-bucket/a/model.onnx", false)
}

func TestFileRelativeURI(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ctx := context.Background()
	if _, err := storage.WriteBytes(ctx, "file://./out/run1/model.onnx", []byte("rel")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out", "run1", "model.onnx"))
	if err != nil || string(got) != "rel" {
		t.Fatalf("file://./out/run1/model.onnx landed elsewhere: %q, %v", got, err)
	}
	entries, err := os.ReadDir(filepath.Join(dir, "out", "run1"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("want only model.onnx in the directory (no .attrs sidecar, no temp file), got %d entries", len(entries))
	}
}

func assertExists(t *testing.T, uri string, want bool) {
	t.Helper()
	got, err := storage.Exists(context.Background(), uri)
	if err != nil {
		t.Fatalf("Exists(%s): %v", uri, err)
	}
	if got != want {
		t.Errorf("Exists(%s) = %v, want %v", uri, got, want)
	}
}

func assertKind(t *testing.T, err, sentinel error, uri string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), uri) {
		t.Errorf("error %q does not name the URI %s", err, uri)
	}
}

func TestVerify(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "k", "model.onnx")
	uri := storage.FileURI(path)
	obj, err := storage.WriteBytes(ctx, uri, []byte("the model as written"))
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.Default.Verify(ctx, uri, obj.Digest, obj.Size); err != nil {
		t.Fatalf("Verify of an untouched object: %v", err)
	}
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"shorter", "four", "content is 4 bytes, but 20 were written"},
		{"same size", "THE MODEL AS WRITTEN", "but " + obj.Digest + " was pinned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := storage.Default.Verify(ctx, uri, obj.Digest, obj.Size)
			if !errors.Is(err, storage.ErrDigestMismatch) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), uri) {
				t.Errorf("err = %v, want a digest mismatch naming %s and saying %q", err, uri, tt.want)
			}
		})
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := storage.Default.Verify(ctx, uri, obj.Digest, obj.Size); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Verify of a deleted object: %v, want not found", err)
	}
}

// TestReadAllAtMost refuses an object past its bound as invalid (not
// retried), by the size the service reports, before reading it.
func TestReadAllAtMost(t *testing.T) {
	ctx := context.Background()
	uri := "mem://at-most/data.npz"
	if _, err := storage.WriteBytes(ctx, uri, []byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	c := &storage.Client{}
	if got, obj, err := c.ReadAllAtMost(ctx, uri, "", 10); err != nil || string(got) != "0123456789" || obj.Size != 10 {
		t.Errorf("at the bound: %q, %+v, %v", got, obj, err)
	}
	got, _, err := c.ReadAllAtMost(ctx, uri, "", 9)
	tl, ok := errors.AsType[*storage.TooLargeError](err)
	if got != nil || !ok || tl.Size != 10 || tl.Max != 9 || storage.KindOf(err) != storage.KindInvalid {
		t.Fatalf("past the bound: %q, %v; want a KindInvalid TooLargeError{10, 9}", got, err)
	}
	if want := "the object is 10 bytes, more than the 9 this read takes"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), uri) {
		t.Errorf("error %q does not name the URI and say %q", err, want)
	}
}
