package storage

import (
	"context"
	"log/slog"
	"sync"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/azureblob" // azblob://
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/gcsblob" // gs://
	"gocloud.dev/blob/memblob"
	_ "gocloud.dev/blob/s3blob" // s3://
)

// Client reads and writes blobs. The zero value is ready to use, with
// DefaultRetry and slog.Default().
type Client struct {
	Retry  Retry
	Logger *slog.Logger
	// unseekable marks the one-attempt client Write uses for content it
	// cannot rewind, so that giving up says why.
	unseekable bool
}

// Default is the client behind the package-level functions.
var Default = &Client{}

// memBuckets keeps every mem:// bucket open for the life of the process:
// gocloud's own mem:// opener returns a new, empty bucket on every open, but
// the local pipeline writes an artifact in one call and reads it in the next.
var memBuckets = struct {
	sync.Mutex
	m map[string]*blob.Bucket
}{m: map[string]*blob.Bucket{}}

func memBucket(name string) *blob.Bucket {
	memBuckets.Lock()
	defer memBuckets.Unlock()
	b, ok := memBuckets.m[name]
	if !ok {
		b = memblob.OpenBucket(nil)
		memBuckets.m[name] = b
	}
	return b
}

// openBucket opens the bucket holding loc. The returned func releases it.
// forWrite creates a missing directory for file:// URIs.
func openBucket(ctx context.Context, loc location, forWrite bool) (*blob.Bucket, func(), error) {
	switch loc.scheme {
	case "mem":
		return memBucket(loc.bucket), func() {}, nil
	case "file":
		b, err := fileblob.OpenBucket(loc.bucket, &fileblob.Options{
			CreateDir: forWrite,
			// Temporary files next to the target: a rename across file
			// systems (TMPDIR elsewhere) would fail.
			NoTempDir: true,
			Metadata:  fileblob.MetadataDontWrite,
		})
		if err != nil {
			return nil, nil, openError(loc.uri, err)
		}
		return b, func() { _ = b.Close() }, nil
	default:
		b, err := blob.OpenBucket(ctx, loc.bucket)
		if err != nil {
			return nil, nil, openError(loc.uri, err)
		}
		return b, func() { _ = b.Close() }, nil
	}
}

// openError classifies a failure to open a bucket. Opening does not talk to
// the service, so an unclassified failure is a malformed URL or missing
// driver configuration: permanent.
func openError(uri string, err error) error {
	k := classify(err)
	if k == KindFailure {
		k = KindInvalid
	}
	return &Error{Op: "open", URI: uri, Kind: k, Err: err}
}
