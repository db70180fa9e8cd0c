package storage

import (
	"context"
	"io"
	"os"
)

// Download copies the object at uri to the local file path, hashing it
// as it goes, and retries transient failures anywhere in the copy (each
// attempt truncates the file): what ReadAll does for an object too large
// to hold in memory. digest, if not empty, pins the content; on any
// error the file is removed.
func (c *Client) Download(ctx context.Context, uri, digest, path string) (Object, error) {
	loc, want, err := readTarget(uri, digest)
	if err != nil {
		return Object{}, err
	}
	var obj Object
	err = c.do(ctx, "read", uri, func(int) error {
		r, err := openReader(ctx, loc, want)
		if err != nil {
			return err
		}
		defer r.Close()
		f, err := os.Create(path)
		if err != nil {
			return err // a local file: not the store's, not retried
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		obj = Object{URI: uri, Digest: r.Digest(), Size: r.n}
		return nil
	})
	if err != nil {
		os.Remove(path)
		return Object{}, err
	}
	return obj, nil
}
