package pipeline

import (
	"net/url"
	"path"
	"strings"
)

// Artifact file names under <output>/<cache-key>/.
const (
	ModelFile   = "model.onnx"
	ResultFile  = "result.json"
	ReleaseFile = "release.json"
)

// JoinURI appends path elements to a storage URI, keeping its query
// (s3://bucket/prefix?endpoint=... stays a valid gocloud URL).
func JoinURI(base string, elem ...string) string {
	u, err := url.Parse(base)
	if err != nil || u.Scheme == "" {
		return strings.TrimRight(base, "/") + "/" + path.Join(elem...)
	}
	parts := append([]string{u.Path}, elem...)
	u.Path = path.Join(parts...)
	if u.Host == "" && !strings.HasPrefix(u.Path, "/") && u.Opaque == "" {
		// file://./rel keeps its relative form.
		u.Path = "/" + u.Path
	}
	u.RawPath = ""
	return u.String()
}

// SiblingURI replaces the last path element of uri with name.
func SiblingURI(uri, name string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return path.Join(path.Dir(uri), name)
	}
	u.Path = path.Join(path.Dir(u.Path), name)
	u.RawPath = ""
	return u.String()
}

// ArtifactURI is where the stage with this cache key writes its model.
func ArtifactURI(outputPrefix, cacheKey string) string {
	return JoinURI(outputPrefix, cacheKey, ModelFile)
}
