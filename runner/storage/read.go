package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"gocloud.dev/blob"
)

// Reader streams one object and hashes it. At the end of the content it
// checks the pinned digest, if any: on a mismatch Read returns a
// KindDigestMismatch error instead of io.EOF. Read to io.EOF before trusting
// the content; Close always.
type Reader struct {
	loc     location
	r       *blob.Reader
	release func()
	h       hash.Hash
	n       int64
	want    string
	digest  string
}

// Read opens uri for streaming. digest, if not empty, pins the content
// (sha256:<hex>, or 64 hex digits). Opening is retried on transient
// failures; the stream itself is not (ReadAll retries the whole read).
func (c *Client) Read(ctx context.Context, uri, digest string) (*Reader, error) {
	loc, want, err := readTarget(uri, digest)
	if err != nil {
		return nil, err
	}
	var rd *Reader
	err = c.do(ctx, "read", uri, func(int) error {
		var err error
		rd, err = openReader(ctx, loc, want)
		return err
	})
	return rd, err
}

// readTarget parses the URI and the pinned digest of a read.
func readTarget(uri, digest string) (location, string, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return location{}, "", err
	}
	want, err := NormalizeDigest(digest)
	if err != nil {
		return location{}, "", invalid("read", uri, err)
	}
	return loc, want, nil
}

func openReader(ctx context.Context, loc location, want string) (*Reader, error) {
	b, release, err := openBucket(ctx, loc, false)
	if err != nil {
		return nil, err
	}
	r, err := b.NewReader(ctx, loc.key, nil)
	if err != nil {
		release()
		return nil, wrap("read", loc.uri, err)
	}
	return &Reader{loc: loc, r: r, release: release, h: sha256.New(), want: want}, nil
}

func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	if err == io.EOF {
		r.digest = digestOf(r.h)
		if r.want != "" && r.digest != r.want {
			return n, mismatch("read", r.loc.uri, r.want, r.digest)
		}
		return n, io.EOF
	}
	if err != nil {
		return n, wrap("read", r.loc.uri, err)
	}
	return n, nil
}

// Close releases the object and its bucket.
func (r *Reader) Close() error {
	err := r.r.Close()
	r.release()
	return wrap("read", r.loc.uri, err)
}

// Size is the object's size as the service reported it when opened.
func (r *Reader) Size() int64 { return r.r.Size() }

// Digest is the sha256:<hex> of the content; empty until Read hit the end.
func (r *Reader) Digest() string { return r.digest }

// ReadAll reads the whole object, verifying the pinned digest if given, and
// retries transient failures anywhere in the read.
func (c *Client) ReadAll(ctx context.Context, uri, digest string) ([]byte, Object, error) {
	return c.readAll(ctx, uri, digest, 0)
}

// TooLargeError is ReadAllAtMost's refusal of an object past its bound,
// wrapped in a KindInvalid *Error (retrying cannot shrink it). Size is
// the object's size as reported, or the bytes read past Max.
type TooLargeError struct{ Size, Max int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the object is %d bytes, more than the %d this read takes", e.Size, e.Max)
}

// ReadAllAtMost is ReadAll for an object that may hold at most max bytes
// (max > 0): a bigger one is refused by the size the service reports
// before anything is read, and by the bytes read should the service's
// size be wrong, so that no more than max+1 bytes are ever held.
func (c *Client) ReadAllAtMost(ctx context.Context, uri, digest string, max int64) ([]byte, Object, error) {
	return c.readAll(ctx, uri, digest, max)
}

func (c *Client) readAll(ctx context.Context, uri, digest string, max int64) ([]byte, Object, error) {
	loc, want, err := readTarget(uri, digest)
	if err != nil {
		return nil, Object{}, err
	}
	tooLarge := func(size int64) error {
		return invalid("read", uri, &TooLargeError{Size: size, Max: max})
	}
	var data []byte
	var obj Object
	err = c.do(ctx, "read", uri, func(int) error {
		r, err := openReader(ctx, loc, want)
		if err != nil {
			return err
		}
		defer r.Close()
		var src io.Reader = r
		if max > 0 {
			if r.Size() > max {
				return tooLarge(r.Size())
			}
			src = io.LimitReader(r, max+1)
		}
		var buf bytes.Buffer
		// ReadFrom wants MinRead bytes free before it sees EOF: without
		// them a buffer of exactly Size bytes doubles at the very end.
		buf.Grow(int(r.Size()) + bytes.MinRead)
		if _, err := buf.ReadFrom(src); err != nil {
			return err
		}
		if max > 0 && int64(buf.Len()) > max {
			return tooLarge(int64(buf.Len()))
		}
		data = buf.Bytes()
		obj = Object{URI: uri, Digest: r.Digest(), Size: r.n}
		return nil
	})
	if err != nil {
		return nil, Object{}, err
	}
	return data, obj, nil
}

// Attributes describe a stored object.
type Attributes struct {
	Size        int64
	ModTime     time.Time
	ContentType string
	// ETag is the service's entity tag, when it has one.
	ETag string
}

// Stat returns the object's attributes.
func (c *Client) Stat(ctx context.Context, uri string) (Attributes, error) {
	loc, err := parseURI(uri)
	if err != nil {
		return Attributes{}, err
	}
	var out Attributes
	err = c.do(ctx, "stat", uri, func(int) error {
		b, release, err := openBucket(ctx, loc, false)
		if err != nil {
			return err
		}
		defer release()
		a, err := b.Attributes(ctx, loc.key)
		if err != nil {
			return wrap("stat", uri, err)
		}
		out = Attributes{Size: a.Size, ModTime: a.ModTime, ContentType: a.ContentType, ETag: a.ETag}
		return nil
	})
	return out, err
}

// Exists reports whether uri names an object. A missing bucket or
// directory is "does not exist"; denied access is an error.
func (c *Client) Exists(ctx context.Context, uri string) (bool, error) {
	_, err := c.Stat(ctx, uri)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	default:
		return false, err
	}
}
