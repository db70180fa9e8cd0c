package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"gocloud.dev/blob"
)

// Write stores the content of r at uri and returns its digest and size.
//
// Write-once: if uri already names an object, Write returns an error for
// which errors.Is(err, ErrExists) holds and leaves the object untouched (a
// caller that addresses artifacts by content treats this as a cache hit).
// The check is made before uploading and again by the service at commit
// (WriterOptions.IfNotExist), so a concurrent writer cannot be overwritten
// either. A write that fails or whose ctx is cancelled leaves nothing at uri.
//
// Transient failures are retried when r is an io.Seeker (it is rewound);
// otherwise only the SDK's own retries apply.
func (c *Client) Write(ctx context.Context, uri string, r io.Reader) (Object, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return Object{}, err
	}
	rs, seekable := r.(io.ReadSeeker)
	var start int64
	if seekable {
		if start, err = rs.Seek(0, io.SeekCurrent); err != nil {
			seekable = false
		}
	}
	cl := c
	if !seekable {
		cl = &Client{Retry: Retry{Attempts: 1}, Logger: c.Logger, unseekable: true}
	}
	var obj Object
	err = cl.do(ctx, "write", uri, func(attempt int) error {
		if attempt > 1 {
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return &Error{Op: "write", URI: uri, Kind: KindFailure, Err: fmt.Errorf("rewinding the content to retry: %w", err)}
			}
		}
		var err error
		obj, err = writeOnce(ctx, loc, r)
		if attempt > 1 && errors.Is(err, ErrExists) {
			// The previous attempt may have been stored although its
			// response was lost: if the content is ours, that is success.
			if _, serr := rs.Seek(start, io.SeekStart); serr == nil {
				if o, same := sameContent(ctx, loc, rs); same {
					obj = o
					return nil
				}
			}
		}
		return err
	})
	return obj, err
}

// WriteBytes is Write for content in memory.
func (c *Client) WriteBytes(ctx context.Context, uri string, b []byte) (Object, error) {
	return c.Write(ctx, uri, bytes.NewReader(b))
}

func writeOnce(ctx context.Context, loc location, r io.Reader) (Object, error) {
	if loc.scheme == "file" {
		return writeFileOnce(ctx, loc, r)
	}
	b, release, err := openBucket(ctx, loc, true)
	if err != nil {
		return Object{}, err
	}
	defer release()
	exists, err := b.Exists(ctx, loc.key)
	if err != nil {
		return Object{}, wrap("write", loc.uri, err)
	}
	if exists {
		return Object{}, &Error{Op: "write", URI: loc.uri, Kind: KindExists}
	}

	// Upload, not NewWriter+Write: the driver reads the content itself
	// (azureblob's Write path panics when a conditional upload fails).
	// Cancelling wctx is how gocloud aborts an upload: sourceReader does it
	// when the content fails, so no driver commits a partial object.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h := sha256.New()
	src := &sourceReader{r: r, cancel: cancel}
	err = b.Upload(wctx, loc.key, io.TeeReader(src, h), &blob.WriterOptions{
		ContentType: "application/octet-stream",
		IfNotExist:  true,
	})
	if src.err != nil {
		return Object{}, sourceError(loc.uri, src.err)
	}
	obj := Object{URI: loc.uri, Digest: digestOf(h), Size: src.n}
	if err != nil {
		err = writeError(loc.uri, err)
		// An SDK that retried a write whose response was lost finds its
		// own object: the same content is success, not a conflict.
		if errors.Is(err, ErrExists) && sameDigest(ctx, loc, obj.Digest) {
			return obj, nil
		}
		return Object{}, err
	}
	return obj, nil
}

// sameDigest reports whether the object at loc has the given digest.
func sameDigest(ctx context.Context, loc location, digest string) bool {
	rd, err := openReader(ctx, loc, digest)
	if err != nil {
		return false
	}
	defer rd.Close()
	_, err = io.Copy(io.Discard, rd)
	return err == nil
}

func writeError(uri string, err error) error {
	if isPreconditionFailed(err) {
		return &Error{Op: "write", URI: uri, Kind: KindExists, Err: err}
	}
	return wrap("write", uri, err)
}

// sourceReader counts the content being written and, when reading it
// fails, remembers the error (to tell it from an error of the storage) and
// aborts the upload.
type sourceReader struct {
	r      io.Reader
	cancel context.CancelFunc
	n      int64
	err    error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.n += int64(n)
	if err != nil && err != io.EOF {
		s.err = err
		s.cancel()
	}
	return n, err
}

// sourceError keeps the class of a storage error in the source (a digest
// mismatch while copying between URIs stays a digest mismatch).
func sourceError(uri string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	return &Error{Op: "write", URI: uri, Kind: KindFailure, Err: fmt.Errorf("reading the content to write: %w", err)}
}

// sameContent reports whether the object at loc holds exactly what r holds.
func sameContent(ctx context.Context, loc location, r io.Reader) (Object, bool) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return Object{}, false
	}
	obj := Object{URI: loc.uri, Digest: digestOf(h), Size: n}
	return obj, sameDigest(ctx, loc, obj.Digest)
}

// Delete removes the object at uri. An object, bucket or directory that does
// not exist counts as deleted.
func (c *Client) Delete(ctx context.Context, uri string) error {
	loc, err := parseURI(uri)
	if err != nil {
		return err
	}
	return c.do(ctx, "delete", uri, func(int) error {
		b, release, err := openBucket(ctx, loc, false)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer release()
		err = wrap("delete", uri, b.Delete(ctx, loc.key))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
}
