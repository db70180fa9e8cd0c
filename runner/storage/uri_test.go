package storage

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseURI(t *testing.T) {
	tests := []struct {
		uri     string
		want    location
		wantErr string
	}{
		{
			uri:  "s3://models/a/b/model.onnx?endpoint=http://127.0.0.1:9000&use_path_style=true&region=us-east-1",
			want: location{scheme: "s3", bucket: "s3://models?endpoint=http://127.0.0.1:9000&use_path_style=true&region=us-east-1", key: "a/b/model.onnx"},
		},
		{uri: "gs://b/k", want: location{scheme: "gs", bucket: "gs://b", key: "k"}},
		{
			uri:  "azblob://c/dir/m.onnx?localemu=true&domain=127.0.0.1:10000&protocol=http",
			want: location{scheme: "azblob", bucket: "azblob://c?localemu=true&domain=127.0.0.1:10000&protocol=http", key: "dir/m.onnx"},
		},
		{uri: "mem://scratch/x/y.onnx", want: location{scheme: "mem", bucket: "scratch", key: "x/y.onnx"}},
		{uri: "file:///abs/dir/model.onnx", want: location{scheme: "file", bucket: "/abs/dir", key: "model.onnx"}},
		{uri: "file://localhost/abs/model.onnx", want: location{scheme: "file", bucket: "/abs", key: "model.onnx"}},
		{uri: "file://./dir/model.onnx", want: location{scheme: "file", bucket: "dir", key: "model.onnx"}},
		{uri: "file://./model.onnx", want: location{scheme: "file", bucket: ".", key: "model.onnx"}},
		{uri: "file://./../up/model.onnx", want: location{scheme: "file", bucket: "../up", key: "model.onnx"}},
		{uri: "/abs/model.onnx", wantErr: "no scheme"},
		{uri: "ftp://h/k", wantErr: `unsupported scheme "ftp"`},
		{uri: "s3:///key", wantErr: "no bucket"},
		{uri: "s3://bucket", wantErr: "names a bucket or folder"},
		{uri: "s3://bucket/dir/", wantErr: "names a bucket or folder"},
		{uri: "mem://b/k?x=1", wantErr: "mem:// URIs take no query"},
		{uri: "file:///abs/dir/", wantErr: "names a directory"},
		{uri: "file://host/x", wantErr: `file:// host "host"`},
		{uri: "file:///a/m.onnx?metadata=skip", wantErr: "file:// URIs take no query"},
		{uri: "s3://b/%zz", wantErr: "not a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			got, err := parseURI(tt.uri)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseURI(%q) error = %v, want it to contain %q", tt.uri, err, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.uri) {
					t.Errorf("error %v is not an ErrInvalid naming the URI", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.want.uri = tt.uri
			if d := cmp.Diff(tt.want, got, cmp.AllowUnexported(location{})); d != "" {
				t.Errorf("parseURI(%q) (-want +got):\n%s", tt.uri, d)
			}
		})
	}
}

func TestFileURI(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/tmp/out/model.onnx", "file:///tmp/out/model.onnx"},
		{"out/model.onnx", "file://./out/model.onnx"},
		{"./model.onnx", "file://./model.onnx"},
		{"../x/m.onnx", "file://./../x/m.onnx"},
		{"/tmp/with space/m.onnx", "file:///tmp/with%20space/m.onnx"},
	}
	for _, tt := range tests {
		got := FileURI(tt.path)
		if got != tt.want {
			t.Errorf("FileURI(%q) = %q, want %q", tt.path, got, tt.want)
		}
		loc, err := parseURI(got)
		if err != nil {
			t.Errorf("parseURI(FileURI(%q)): %v", tt.path, err)
			continue
		}
		if back := filepath.Join(loc.bucket, loc.key); back != filepath.Clean(tt.path) {
			t.Errorf("FileURI(%q) parses back to %q", tt.path, back)
		}
	}
}

func TestNormalizeDigest(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	tests := []struct {
		in, want, wantErr string
	}{
		{in: "", want: ""},
		{in: hex, want: "sha256:" + hex},
		{in: "sha256:" + hex, want: "sha256:" + hex},
		{in: "sha256:" + strings.ToUpper(hex), want: "sha256:" + hex},
		{in: "sha256:abc", wantErr: "want sha256:<64 hex digits>"},
		{in: "md5:" + hex, wantErr: "want sha256:<64 hex digits>"},
		{in: strings.Repeat("zz", 32), wantErr: "want sha256:<64 hex digits>"},
	}
	for _, tt := range tests {
		got, err := NormalizeDigest(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeDigest(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeDigest(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestRetryDelay(t *testing.T) {
	r := Retry{Attempts: 5, Initial: 200e6, Max: 3e9}
	// Each delay lies in [d/2, d) for d = 200ms, 400ms, 800ms, 1.6s, 3s, 3s.
	for i, d := range []int64{200e6, 400e6, 800e6, 1600e6, 3e9, 3e9} {
		for range 20 {
			got := int64(r.delay(i + 1))
			if got < d/2 || got >= d {
				t.Fatalf("delay(%d) = %d, want in [%d, %d)", i+1, got, d/2, d)
			}
		}
	}
}
