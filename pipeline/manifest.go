package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/kompress/kompress/api/v1alpha1"
)

// ManifestDigest is the digest of a model written in several files (a
// model with external data): sha256 over one line per file,
//
//	<name> <sizeBytes> <sha256:hex>\n
//
// the model file first, then its data files in the order given (the
// runner gives them sorted by name). Every byte of every file is
// covered, in a fixed order, so that pinning or verifying this one
// digest covers the data files too. A model in one file has no
// manifest: its digest is the file's own.
func ManifestDigest(files []v1alpha1.ArtifactFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s %d %s\n", f.Name, f.SizeBytes, f.Digest)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// checkFiles checks the files of an artifact written with external data:
// plain names inside its folder, the model file first, digests and sizes
// that add up to the artifact's, so that a result cannot send a reader of
// status to other objects.
func checkFiles(a v1alpha1.Artifact) error {
	var errs []error
	var size int64
	for i, f := range a.Files {
		clean := path.Clean(f.Name)
		if f.Name == "" || clean != f.Name || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(f.Name, "\\") {
			errs = append(errs, fmt.Errorf("result.output.files[%d].name %q is not a path inside the model's folder", i, f.Name))
		}
		if !validDigest(f.Digest) {
			errs = append(errs, fmt.Errorf("result.output.files[%d].digest %q is not sha256:<64 hex digits>", i, f.Digest))
		}
		if f.SizeBytes < 0 {
			errs = append(errs, fmt.Errorf("result.output.files[%d].sizeBytes is %d", i, f.SizeBytes))
		}
		size += f.SizeBytes
	}
	if first := a.Files[0].Name; first != path.Base(uriPath(a.URI)) {
		errs = append(errs, fmt.Errorf("result.output.files[0] is %q, expected the model file %q", first, path.Base(uriPath(a.URI))))
	}
	if size != a.SizeBytes {
		errs = append(errs, fmt.Errorf("result.output.files add up to %d bytes, but sizeBytes is %d", size, a.SizeBytes))
	}
	if d := ManifestDigest(a.Files); d != a.Digest {
		errs = append(errs, fmt.Errorf("result.output.digest is %s, but the files' manifest is %s", a.Digest, d))
	}
	return errors.Join(errs...)
}

// uriPath is the path of a URI, without its query.
func uriPath(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		return u.Path
	}
	return uri
}
