package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/storage"
	"github.com/kompress/kompress/runner/storage/storagetest"
)

func TestCleanup(t *testing.T) {
	s3 := storagetest.StartS3(t, "models")
	ctx := context.Background()
	put := func(keys ...string) {
		for _, k := range keys {
			if err := s3.Put("models", k, []byte("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		put      []string
		args     []string
		code     int
		left     []string
		stderr   string
		termWant string
	}{{
		name: "deletes in order, missing objects count as deleted",
		put:  []string{"out/a/result.json", "out/a/model.onnx", "out/b/model.onnx", "keep/model.onnx"},
		args: []string{"--uri", s3.URI("models", "out/a/result.json"), "--uri", s3.URI("models", "out/a/model.onnx"),
			"--uri", s3.URI("models", "out/gone/model.onnx"), "--uri", s3.URI("models", "out/b/model.onnx"),
			"--keep", s3.URI("models", "keep/model.onnx")},
		left:     []string{"keep/model.onnx"},
		termWant: "deleted 4 of 4 objects",
	}, {
		name: "a kept object stops everything",
		put:  []string{"out/a/model.onnx", "final/model.onnx"},
		args: []string{"--uri", s3.URI("models", "out/a/model.onnx"), "--uri", s3.URI("models", "final/model.onnx"),
			"--keep", s3.URI("models", "final/model.onnx")},
		code: pipeline.ExitUsage, left: []string{"final/model.onnx", "out/a/model.onnx"},
		stderr: "refusing to delete " + s3.URI("models", "final/model.onnx") + ": named by --keep",
	}, {
		name: "no uri", code: pipeline.ExitUsage, stderr: "no --uri given",
	}, {
		name: "denied access stops at the first object, exit 77",
		put:  []string{"out/a/result.json", "out/a/model.onnx"},
		args: []string{"--uri", s3.URI("models", "out/a/result.json"), "--uri", s3.URI("models", "out/a/model.onnx")},
		code: pipeline.ExitDenied, left: []string{"out/a/model.onnx", "out/a/result.json"},
		stderr: "out/a/result.json",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range mustKeys(t, s3) {
				if err := storage.Delete(ctx, s3.URI("models", k)); err != nil {
					t.Fatal(err)
				}
			}
			put(tc.put...)
			if tc.code == pipeline.ExitDenied {
				t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
			}
			term := filepath.Join(t.TempDir(), "termination-log")
			_, stderr, code := cli(t, append([]string{"cleanup", "--termination-log", term}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.stderr != "" && !strings.Contains(stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
			}
			if diff := cmp.Diff(tc.left, mustKeys(t, s3)); diff != "" {
				t.Errorf("objects left (-want +got):\n%s", diff)
			}
			if tc.termWant != "" {
				got, _ := os.ReadFile(term)
				if string(got) != tc.termWant {
					t.Errorf("termination message %q, want %q", got, tc.termWant)
				}
			}
		})
	}
}

func mustKeys(t *testing.T, s3 *storagetest.S3) []string {
	t.Helper()
	keys, err := s3.Keys("models")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}
