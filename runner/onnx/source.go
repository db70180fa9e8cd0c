package onnx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Source holds the external data files of a streamed model: the files
// its tensors name by location, relative to the model. A local folder
// (OpenFile) is one; object storage read by range (runner/storage) is
// another, so a model of any size is transformed without downloading it.
type Source interface {
	// Size is the size of the file at location.
	Size(location string) (int64, error)
	// ReadRange returns length bytes of the file at location from offset.
	ReadRange(location string, offset, length int64) (io.ReadCloser, error)
	// Dir is a local folder holding every file the model names, where
	// ONNX Runtime reads them from (it reads external data only from
	// files). A source not on local disk copies them there on the first
	// call, so a model only run in Go is never downloaded whole.
	Dir() (string, error)
}

// CleanLocation checks an external data location as ONNX does (a path
// relative to the model's directory, never out of it) and returns it
// with forward slashes, cleaned: the key sources take.
func CleanLocation(loc string) (string, error) {
	if loc == "" {
		return "", invalidf("external_data has no location")
	}
	clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(loc)))
	if filepath.IsAbs(filepath.FromSlash(loc)) || strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "\\") ||
		clean == ".." || strings.HasPrefix(clean, "../") {
		return "", invalidf("external data location %q must be a relative path inside the model's directory", loc)
	}
	return clean, nil
}

// dirSource reads external data files from a local folder.
type dirSource struct {
	dir   string
	mu    sync.Mutex
	sizes map[string]int64
}

// DirSource is the Source of a model's local folder.
func DirSource(dir string) Source { return &dirSource{dir: dir, sizes: map[string]int64{}} }

func (d *dirSource) path(loc string) string { return filepath.Join(d.dir, filepath.FromSlash(loc)) }

func (d *dirSource) Size(loc string) (int64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n, ok := d.sizes[loc]; ok {
		return n, nil
	}
	st, err := os.Stat(d.path(loc))
	if err != nil {
		return 0, err
	}
	if !st.Mode().IsRegular() {
		return 0, fmt.Errorf("%s is not a regular file", d.path(loc))
	}
	d.sizes[loc] = st.Size()
	return st.Size(), nil
}

func (d *dirSource) ReadRange(loc string, offset, length int64) (io.ReadCloser, error) {
	f, err := os.Open(d.path(loc))
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.NewSectionReader(f, offset, length), f}, nil
}

func (d *dirSource) Dir() (string, error) { return d.dir, nil }
