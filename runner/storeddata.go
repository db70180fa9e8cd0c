package runner

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/kompress/kompress/api/v1alpha1"
	"github.com/kompress/kompress/pipeline"
	"github.com/kompress/kompress/runner/onnx"
	"github.com/kompress/kompress/runner/storage"
)

// storedData is the onnx.Source of a model in object storage: the
// external data files beside it, read tensor by tensor through range
// requests, so a stage that only transforms weights never downloads the
// model whole. ONNX Runtime reads external data only from local files:
// Dir copies them into scratch, once, hashing them as they come, and
// later reads are served from those copies.
type storedData struct {
	ctx     context.Context
	st      *storage.Client
	model   string // the model file's URI
	scratch string

	// local copies each file to scratch when the model first names it
	// (the model will be run by ONNX Runtime): every read is then local.
	local bool

	mu      sync.Mutex
	sizes   map[string]int64  // every file the model names, by location
	digests map[string]string // of the files read whole
	copied  map[string]bool

	// rangeBytes counts the bytes read by range requests.
	rangeBytes atomic.Int64
}

func newStoredData(ctx context.Context, st *storage.Client, modelURI, scratch string, local bool) *storedData {
	return &storedData{ctx: ctx, st: st, model: modelURI, scratch: scratch, local: local,
		sizes: map[string]int64{}, digests: map[string]string{}, copied: map[string]bool{}}
}

func (s *storedData) uri(loc string) (string, error) { return storage.SiblingOf(s.model, loc) }

func (s *storedData) Size(loc string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.sizes[loc]; ok {
		return n, nil
	}
	uri, err := s.uri(loc)
	if err != nil {
		return 0, err
	}
	a, err := s.st.Stat(s.ctx, uri)
	if err != nil {
		return 0, err
	}
	s.sizes[loc] = a.Size
	if s.local {
		if err := s.copyFile(loc); err != nil {
			return 0, err
		}
	}
	return a.Size, nil
}

func (s *storedData) ReadRange(loc string, offset, length int64) (io.ReadCloser, error) {
	s.mu.Lock()
	copied := s.copied[loc]
	s.mu.Unlock()
	if copied {
		return onnx.DirSource(s.scratch).ReadRange(loc, offset, length)
	}
	uri, err := s.uri(loc)
	if err != nil {
		return nil, err
	}
	s.rangeBytes.Add(length)
	return s.st.ReadRange(s.ctx, uri, offset, length)
}

// Dir copies every file the model names into scratch (once each) and
// returns it.
func (s *storedData) Dir() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, loc := range s.locations() {
		if err := s.copyFile(loc); err != nil {
			return "", err
		}
	}
	return s.scratch, nil
}

// copyFile streams one file to scratch, hashing it, unless it is there.
func (s *storedData) copyFile(loc string) error {
	if s.copied[loc] {
		return nil
	}
	dst := filepath.Join(s.scratch, filepath.FromSlash(loc))
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	digest, err := s.stream(loc, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying the external data file %q to local disk for ONNX Runtime: %w", loc, err)
	}
	s.digests[loc], s.copied[loc] = digest, true
	return nil
}

// stream reads a whole file into w and returns its digest.
func (s *storedData) stream(loc string, w io.Writer) (string, error) {
	uri, err := s.uri(loc)
	if err != nil {
		return "", err
	}
	r, err := s.st.Read(s.ctx, uri, "")
	if err != nil {
		return "", err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return "", err
	}
	return r.Digest(), nil
}

// locations are the files the model names, sorted.
func (s *storedData) locations() []string {
	locs := make([]string, 0, len(s.sizes))
	for loc := range s.sizes {
		locs = append(locs, loc)
	}
	slices.Sort(locs)
	return locs
}

// files lists the model file and every data file with their digests, in
// manifest order: files not read whole yet are hashed by a streaming
// read (no copy is kept).
func (s *storedData) files(model storage.Object) ([]v1alpha1.ArtifactFile, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []v1alpha1.ArtifactFile{{Name: baseName(model.URI), Digest: model.Digest, SizeBytes: model.Size}}
	for _, loc := range s.locations() {
		d, ok := s.digests[loc]
		if !ok {
			var err error
			if d, err = s.stream(loc, io.Discard); err != nil {
				return nil, err
			}
			s.digests[loc] = d
		}
		out = append(out, v1alpha1.ArtifactFile{Name: loc, Digest: d, SizeBytes: s.sizes[loc]})
	}
	return out, nil
}

// baseName is the last element of a URI's path (query left out).
func baseName(uri string) string {
	if u, err := url.Parse(uri); err == nil {
		return path.Base(u.Path)
	}
	return pipeline.ModelFile
}
