package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/kompress/kompress/api/v1alpha1"
)

func TestManifestDigest(t *testing.T) {
	a := v1alpha1.ArtifactFile{Name: "model.onnx", SizeBytes: 10, Digest: "sha256:" + hex.EncodeToString(make([]byte, 32))}
	b := v1alpha1.ArtifactFile{Name: "model.onnx.data", SizeBytes: 7, Digest: "sha256:" + hex.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))}
	text := "model.onnx 10 " + a.Digest + "\nmodel.onnx.data 7 " + b.Digest + "\n"
	sum := sha256.Sum256([]byte(text))
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := ManifestDigest([]v1alpha1.ArtifactFile{a, b}); got != want {
		t.Errorf("ManifestDigest = %s, want %s (sha256 of %q)", got, want, text)
	}
	// Every field of every file, and their order, change it.
	changed := []([]v1alpha1.ArtifactFile){
		{b, a},
		{a, {Name: b.Name, SizeBytes: 8, Digest: b.Digest}},
		{a, {Name: "other.data", SizeBytes: 7, Digest: b.Digest}},
		{a, {Name: b.Name, SizeBytes: 7, Digest: a.Digest}},
		{a},
	}
	for i, files := range changed {
		if ManifestDigest(files) == want {
			t.Errorf("case %d: %v has the same digest", i, files)
		}
	}
}
