package storage

import (
	"context"
	"fmt"
	"io"
)

// Verify checks that the object at uri still holds what was written: a
// size from the object's attributes first (cheap, and enough to catch a
// truncated or replaced file of another size), then the sha256 digest by
// streaming the content, as no store keeps a sha256 of its own. A
// difference is a KindDigestMismatch error; transient failures are
// retried.
func (c *Client) Verify(ctx context.Context, uri, digest string, size int64) error {
	loc, err := parseURI(uri)
	if err != nil {
		return err
	}
	want, err := NormalizeDigest(digest)
	if err != nil || want == "" {
		return invalid("verify", uri, fmt.Errorf("digest %q: want sha256:<64 hex digits>", digest))
	}
	attrs, err := c.Stat(ctx, uri)
	if err != nil {
		return err
	}
	if attrs.Size != size {
		return &Error{Op: "verify", URI: uri, Kind: KindDigestMismatch,
			Err: fmt.Errorf("content is %d bytes, but %d were written", attrs.Size, size)}
	}
	return c.do(ctx, "verify", uri, func(int) error {
		r, err := openReader(ctx, loc, want)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(io.Discard, r)
		return err
	})
}
