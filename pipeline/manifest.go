package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
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
