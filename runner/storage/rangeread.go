package storage

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"
)

// SiblingOf is the URI of name, a path relative to the folder of the
// object uri names (forward slashes), with uri's scheme, bucket and
// query: where a model's external data files are. A name that leaves
// that folder is refused.
func SiblingOf(uri, name string) (string, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return "", err
	}
	clean := path.Clean(name)
	if name == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\\") {
		return "", invalid("parse", uri, fmt.Errorf("%q is not a path inside the folder of %s", name, loc.key))
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", invalid("parse", uri, err)
	}
	u.Path = path.Join(path.Dir(u.Path), clean)
	u.RawPath = ""
	return u.String(), nil
}

// ReadRange opens length bytes of the object at uri from offset, read by
// the service's range request (gocloud's NewRangeReader: every store
// kompress opens serves ranges), so a part of a large object costs only
// its bytes. Opening is retried on transient failures. Close it.
func (c *Client) ReadRange(ctx context.Context, uri string, offset, length int64) (io.ReadCloser, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return nil, err
	}
	var rc io.ReadCloser
	err = c.do(ctx, "read", uri, func(int) error {
		b, release, err := openBucket(ctx, loc, false)
		if err != nil {
			return err
		}
		r, err := b.NewRangeReader(ctx, loc.key, offset, length, nil)
		if err != nil {
			release()
			return wrap("read", uri, err)
		}
		rc = &rangeReader{r: r, uri: uri, release: release}
		return nil
	})
	return rc, err
}

// rangeReader is one range of an object; closing it releases the bucket.
type rangeReader struct {
	r       io.ReadCloser
	uri     string
	release func()
}

func (r *rangeReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = wrap("read", r.uri, err)
	}
	return n, err
}

func (r *rangeReader) Close() error {
	err := r.r.Close()
	r.release()
	return wrap("read", r.uri, err)
}
