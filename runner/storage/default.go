package storage

import (
	"context"
	"io"
)

// The package-level functions use Default.

// Read opens uri for streaming; see Client.Read.
func Read(ctx context.Context, uri, digest string) (*Reader, error) {
	return Default.Read(ctx, uri, digest)
}

// ReadAll reads the whole object at uri; see Client.ReadAll.
func ReadAll(ctx context.Context, uri, digest string) ([]byte, Object, error) {
	return Default.ReadAll(ctx, uri, digest)
}

// Stat returns the attributes of the object at uri.
func Stat(ctx context.Context, uri string) (Attributes, error) {
	return Default.Stat(ctx, uri)
}

// Exists reports whether uri names an object.
func Exists(ctx context.Context, uri string) (bool, error) {
	return Default.Exists(ctx, uri)
}

// Write stores r at uri, once; see Client.Write.
func Write(ctx context.Context, uri string, r io.Reader) (Object, error) {
	return Default.Write(ctx, uri, r)
}

// WriteBytes stores b at uri, once.
func WriteBytes(ctx context.Context, uri string, b []byte) (Object, error) {
	return Default.WriteBytes(ctx, uri, b)
}

// Delete removes the object at uri; a missing one counts as deleted.
func Delete(ctx context.Context, uri string) error {
	return Default.Delete(ctx, uri)
}
