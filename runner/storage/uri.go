package storage

import (
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// Schemes this package opens.
var Schemes = []string{"s3", "gs", "azblob", "file", "mem"}

// location is an object URI split into the bucket to open and the key in it.
type location struct {
	uri    string
	scheme string
	// bucket is the bucket URL with its query for s3/gs/azblob, the bucket
	// name for mem and the local directory for file.
	bucket string
	key    string
}

// parseURI splits uri into bucket and key. The query belongs to the bucket.
func parseURI(uri string) (location, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return location{}, invalid("parse", uri, fmt.Errorf("not a URL: %w", err))
	}
	switch u.Scheme {
	case "file":
		return parseFileURI(uri, u)
	case "mem":
		if u.RawQuery != "" {
			return location{}, invalid("parse", uri, fmt.Errorf("mem:// URIs take no query"))
		}
		fallthrough
	case "s3", "gs", "azblob":
		if u.Host == "" {
			return location{}, invalid("parse", uri, fmt.Errorf("no bucket: want %s://BUCKET/KEY", u.Scheme))
		}
		key := strings.TrimPrefix(u.Path, "/")
		if key == "" || strings.HasSuffix(key, "/") {
			return location{}, invalid("parse", uri, fmt.Errorf("names a bucket or folder, not an object: want %s://BUCKET/KEY", u.Scheme))
		}
		bucket := u.Scheme + "://" + u.Host
		if u.Scheme == "mem" {
			bucket = u.Host
		} else if u.RawQuery != "" {
			bucket += "?" + u.RawQuery
		}
		return location{uri: uri, scheme: u.Scheme, bucket: bucket, key: key}, nil
	case "":
		return location{}, invalid("parse", uri, fmt.Errorf("no scheme: want one of %s (file:///abs/path or file://./relative/path for local files)", strings.Join(Schemes, ", ")))
	default:
		return location{}, invalid("parse", uri, fmt.Errorf("unsupported scheme %q: want one of %s", u.Scheme, strings.Join(Schemes, ", ")))
	}
}

// parseFileURI accepts file:///abs/path (or file://localhost/abs/path) and
// file://./relative/path, relative to the current directory.
func parseFileURI(uri string, u *url.URL) (location, error) {
	if u.RawQuery != "" {
		return location{}, invalid("parse", uri, fmt.Errorf("file:// URIs take no query"))
	}
	p := u.Path
	switch u.Host {
	case "", "localhost":
		if !strings.HasPrefix(p, "/") {
			return location{}, invalid("parse", uri, fmt.Errorf("want file:///absolute/path or file://./relative/path"))
		}
	case ".":
		p = strings.TrimPrefix(p, "/")
	default:
		return location{}, invalid("parse", uri, fmt.Errorf("file:// host %q: want file:///absolute/path or file://./relative/path", u.Host))
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return location{}, invalid("parse", uri, fmt.Errorf("names a directory, not a file"))
	}
	p = filepath.FromSlash(path.Clean(p))
	return location{uri: uri, scheme: "file", bucket: filepath.Dir(p), key: filepath.Base(p)}, nil
}

// FileURI turns a local path into a file:// URI: absolute paths become
// file:///abs/path, relative ones file://./rel/path.
func FileURI(p string) string {
	p = filepath.ToSlash(filepath.Clean(p))
	if strings.HasPrefix(p, "/") {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return (&url.URL{Scheme: "file", Host: ".", Path: "/" + p}).String()
}
