package storage

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeFileOnce is writeOnce for file:// URIs. fileblob's IfNotExist is a
// stat before a rename, which lets two concurrent writers both succeed
// (the second replacing the first's file after both saw none). Here the
// content goes to a temporary file beside the target, is synced, and is
// committed with link(2), which fails if the target exists: exactly one
// writer wins, and readers never see a partial file.
func writeFileOnce(ctx context.Context, loc location, r io.Reader) (Object, error) {
	target := filepath.Join(loc.bucket, loc.key)
	if _, err := os.Lstat(target); err == nil {
		return Object{}, &Error{Op: "write", URI: loc.uri, Kind: KindExists}
	}
	if err := os.MkdirAll(loc.bucket, 0o755); err != nil {
		return Object{}, wrap("write", loc.uri, err)
	}
	tmp, err := os.CreateTemp(loc.bucket, "."+loc.key+".*.tmp")
	if err != nil {
		return Object{}, wrap("write", loc.uri, err)
	}
	defer os.Remove(tmp.Name()) // the link, if made, is the only name kept
	obj, err := copyToFile(ctx, loc.uri, tmp, r)
	if err == nil {
		// CreateTemp's 0600 would hide artifacts from the other users
		// of a shared directory; fileblob wrote 0644 too.
		err = wrap("write", loc.uri, tmp.Chmod(0o644))
	}
	if cerr := tmp.Close(); err == nil && cerr != nil {
		err = wrap("write", loc.uri, cerr)
	}
	if err != nil {
		return Object{}, err
	}
	if err := os.Link(tmp.Name(), target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Object{}, &Error{Op: "write", URI: loc.uri, Kind: KindExists, Err: err}
		}
		return Object{}, wrap("write", loc.uri, fmt.Errorf("committing %s: %w", target, err))
	}
	syncDir(loc.bucket)
	return obj, nil
}

// copyToFile writes r to f, hashing it, and syncs f. A failure reading r
// is the source's (sourceError), not the storage's.
func copyToFile(ctx context.Context, uri string, f *os.File, r io.Reader) (Object, error) {
	h := sha256.New()
	src := &sourceReader{r: r, cancel: func() {}}
	_, err := io.Copy(io.MultiWriter(f, h), &ctxReader{ctx: ctx, r: src})
	if src.err != nil {
		return Object{}, sourceError(uri, src.err)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return Object{}, wrap("write", uri, err)
	}
	return Object{URI: uri, Digest: digestOf(h), Size: src.n}, nil
}

// ctxReader stops a copy when its context is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// syncDir makes a new directory entry durable; best effort, as a failure
// here cannot undo the commit.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
