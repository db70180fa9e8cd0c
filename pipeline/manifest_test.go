package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
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

// A result listing files is checked: names inside the model's folder, the
// model file first, sizes and manifest matching the artifact's.
func TestCheckFiles(t *testing.T) {
	d := func(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }
	good := func() v1alpha1.Artifact {
		files := []v1alpha1.ArtifactFile{{Name: "model.onnx", Digest: d('a'), SizeBytes: 10}, {Name: "model.onnx.data", Digest: d('b'), SizeBytes: 20}}
		return v1alpha1.Artifact{URI: "s3://b/k/model.onnx?region=x", Digest: ManifestDigest(files), SizeBytes: 30, Files: files}
	}
	for _, tc := range []struct {
		name   string
		change func(*v1alpha1.Artifact)
		say    string
	}{
		{"good", func(*v1alpha1.Artifact) {}, ""},
		{"escaping name", func(a *v1alpha1.Artifact) { a.Files[1].Name = "../x.data" }, `files[1].name "../x.data" is not a path inside`},
		{"model not first", func(a *v1alpha1.Artifact) { a.Files[0], a.Files[1] = a.Files[1], a.Files[0] }, `files[0] is "model.onnx.data", expected the model file "model.onnx"`},
		{"size", func(a *v1alpha1.Artifact) { a.SizeBytes = 31 }, "add up to 30 bytes, but sizeBytes is 31"},
		{"digest", func(a *v1alpha1.Artifact) { a.Files[1].Digest = d('c') }, "but the files' manifest is"},
		{"bad digest", func(a *v1alpha1.Artifact) { a.Files[1].Digest = "md5:x" }, `files[1].digest "md5:x" is not sha256`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			tc.change(&a)
			err := checkFiles(a)
			if tc.say == "" {
				if err != nil {
					t.Errorf("checkFiles: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.say) {
				t.Errorf("checkFiles: %v, want an error saying %q", err, tc.say)
			}
		})
	}
}
