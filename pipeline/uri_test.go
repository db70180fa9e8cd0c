package pipeline

import "testing"

func TestJoinURI(t *testing.T) {
	tests := []struct{ base, want string }{
		{"s3://bucket/prefix", "s3://bucket/prefix/k/model.onnx"},
		{"s3://bucket/prefix/", "s3://bucket/prefix/k/model.onnx"},
		{"s3://bucket", "s3://bucket/k/model.onnx"},
		{"s3://bucket/p?endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://bucket/p/k/model.onnx?endpoint=http://127.0.0.1:9000&use_path_style=true"},
		{"file:///tmp/out", "file:///tmp/out/k/model.onnx"},
		{"file://./out", "file://./out/k/model.onnx"},
		{"mem://b/x", "mem://b/x/k/model.onnx"},
	}
	for _, tc := range tests {
		if got := JoinURI(tc.base, "k", ModelFile); got != tc.want {
			t.Errorf("JoinURI(%q) = %q, want %q", tc.base, got, tc.want)
		}
	}
}

func TestSiblingURI(t *testing.T) {
	tests := []struct{ uri, want string }{
		{"s3://b/p/k/model.onnx?region=us-east-1", "s3://b/p/k/result.json?region=us-east-1"},
		{"file://./out/k/model.onnx", "file://./out/k/result.json"},
		{"file:///abs/k/model.onnx", "file:///abs/k/result.json"},
	}
	for _, tc := range tests {
		if got := SiblingURI(tc.uri, ResultFile); got != tc.want {
			t.Errorf("SiblingURI(%q) = %q, want %q", tc.uri, got, tc.want)
		}
	}
}
