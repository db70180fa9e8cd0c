package pipeline

import (
	"fmt"
	"net/url"
	"path"
)

// Pinned reports whether every blob the task reads is addressed by
// digest: its input, its source and its dataset (a select step's models).
// Only then does the cache key address the content, so only then may a
// result be reused without reading the blobs again.
func (t Task) Pinned() bool {
	if t.Select != nil {
		// A select step reads only the variants' models and results,
		// each named with its digest.
		return true
	}
	return t.Input.Digest != "" && t.Source.Digest != "" && (t.Dataset == nil || t.Dataset.Digest != "")
}

// Digests are what a runner measured of the blobs a task reads.
type Digests struct {
	Input, Source, Dataset string
}

// Resolve returns the task as if every blob it read had been pinned to
// the digests measured: the cache key then addresses the content, and the
// output moves under that key. An unpinned file replaced since an earlier
// run gets a new key instead of the stale artifact. A pinned task is
// returned as it is.
func (t Task) Resolve(d Digests) Task {
	if t.Pinned() {
		return t
	}
	r := t
	if r.Input.Digest == "" {
		r.Input.Digest = d.Input
	}
	if r.Source.Digest == "" {
		r.Source.Digest = d.Source
	}
	if r.Dataset != nil && r.Dataset.Digest == "" {
		ds := *r.Dataset
		ds.Digest = d.Dataset
		r.Dataset = &ds
	}
	r.CacheKey = CacheKey(r)
	r.OutputURI = rekeyURI(t.OutputURI, r.CacheKey)
	if n := len(r.Chain); n > 0 && r.Chain[n-1].CacheKey == t.CacheKey {
		r.Chain = append([]ChainLink(nil), r.Chain...)
		r.Chain[n-1].ContentKey, r.Chain[n-1].Output.URI = r.CacheKey, r.OutputURI
	}
	return r
}

// rekeyURI replaces the cache-key folder of an artifact URI
// (<output>/<key>/model.onnx).
func rekeyURI(uri, key string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return path.Join(path.Dir(path.Dir(uri)), key, path.Base(uri))
	}
	u.Path = path.Join(path.Dir(path.Dir(u.Path)), key, path.Base(u.Path))
	u.RawPath = ""
	return u.String()
}

// checkContentKey checks the output of a result that names a content key
// other than the task's plan key: only an unpinned task may have one, and
// its output must be the task's output moved under that key.
func (r Result) checkContentKey(t Task) error {
	if r.ContentKey == "" || r.ContentKey == t.CacheKey {
		if r.Output != nil && r.Output.URI != t.OutputURI {
			return fmt.Errorf("result.output.uri is %q, expected %q", r.Output.URI, t.OutputURI)
		}
		return nil
	}
	if t.Pinned() {
		return fmt.Errorf("result.contentKey is %q, but the task pins every input: expected %q", r.ContentKey, t.CacheKey)
	}
	if !isHexKey(r.ContentKey) {
		return fmt.Errorf("result.contentKey %q is not 64 lowercase hex digits", r.ContentKey)
	}
	if want := rekeyURI(t.OutputURI, r.ContentKey); r.Output != nil && r.Output.URI != want {
		return fmt.Errorf("result.output.uri is %q, expected %q", r.Output.URI, want)
	}
	return nil
}
