package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

// Ranges of an object read back exactly its bytes on every backend; a
// missing object is not found.
func TestReadRange(t *testing.T) {
	ctx := context.Background()
	data := make([]byte, 300_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			uri := b.uri("ranges/model.onnx.data")
			if _, err := storage.WriteBytes(ctx, uri, data); err != nil {
				t.Fatal(err)
			}
			for _, r := range [][2]int64{{0, 10}, {65536, 100_000}, {299_990, 10}, {0, 300_000}, {1234, 0}} {
				rc, err := storage.Default.ReadRange(ctx, uri, r[0], r[1])
				if err != nil {
					t.Fatalf("range %v: %v", r, err)
				}
				got, err := io.ReadAll(rc)
				if cerr := rc.Close(); err == nil {
					err = cerr
				}
				if err != nil || !bytes.Equal(got, data[r[0]:r[0]+r[1]]) {
					t.Errorf("range %v: %d bytes, %v; want the object's %d bytes there", r, len(got), err, r[1])
				}
			}
			if _, err := storage.Default.ReadRange(ctx, b.uri("ranges/missing.data"), 0, 10); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("missing object: %v, want not found", err)
			}
		})
	}
}

func TestSiblingOf(t *testing.T) {
	for _, tc := range []struct{ uri, name, want, err string }{
		{"s3://b/m/model.onnx?region=x&endpoint=http://h", "model.onnx.data", "s3://b/m/model.onnx.data?region=x&endpoint=http://h", ""},
		{"azblob://c/a/b/model.onnx", "weights/w1.bin", "azblob://c/a/b/weights/w1.bin", ""},
		{"gs://b/model.onnx", "./x.data", "gs://b/x.data", ""},
		{"file:///tmp/m/model.onnx", "model.onnx.data", "file:///tmp/m/model.onnx.data", ""},
		{"s3://b/m/model.onnx", "../other/x.data", "", "not a path inside the folder of m/model.onnx"},
		{"s3://b/m/model.onnx", "/etc/passwd", "", "not a path inside the folder"},
		{"s3://b/m/model.onnx", `..\x.data`, "", "not a path inside the folder"},
		{"s3://b/m/model.onnx", "", "", "not a path inside the folder"},
	} {
		got, err := storage.SiblingOf(tc.uri, tc.name)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("SiblingOf(%q, %q) = %q, %v; want an invalid error saying %q", tc.uri, tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("SiblingOf(%q, %q) = %q, %v; want %q", tc.uri, tc.name, got, err, tc.want)
		}
	}
}

// BenchmarkAzuriteRead reads a 64 MiB object from Azurite whole (one
// streamed GET, what a download costs) and in ranges of 4 MiB and
// 256 KiB (what reading tensors one by one costs): their ns/op side by
// side are the cost of range reads against a whole download.
//
//	go test -run '^$' -bench AzuriteRead -benchtime 5x ./runner/storage
func BenchmarkAzuriteRead(b *testing.B) {
	az := storagetest.StartAzurite(b, "models")
	ctx := context.Background()
	const size = 64 << 20
	uri := az.URI("models", "bench/model.onnx.data")
	if _, err := storage.WriteBytes(ctx, uri, make([]byte, size)); err != nil {
		b.Fatal(err)
	}
	b.Run("whole", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			r, err := storage.Read(ctx, uri, "")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, r); err != nil {
				b.Fatal(err)
			}
			r.Close()
		}
	})
	for _, chunk := range []int64{4 << 20, 256 << 10} {
		b.Run("ranges-"+sizeName(chunk), func(b *testing.B) {
			b.SetBytes(size)
			buf := make([]byte, chunk)
			for b.Loop() {
				for off := int64(0); off < size; off += chunk {
					rc, err := storage.Default.ReadRange(ctx, uri, off, chunk)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.ReadFull(rc, buf); err != nil {
						b.Fatal(err)
					}
					rc.Close()
				}
			}
		})
	}
}

func sizeName(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%dMiB", n>>20)
	}
	return fmt.Sprintf("%dKiB", n>>10)
}
