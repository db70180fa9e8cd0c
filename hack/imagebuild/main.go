// Command imagebuild assembles a container image without a container
// engine, as an OCI image layout, from a JSON description (build/*.image.json):
// files from the build (the Go binaries, ONNX Runtime's library), files of
// Debian packages (.deb files pinned by build/debian.lock), and a nonroot
// user. It writes the layout, a summary (digest, sizes) and an SPDX SBOM.
//
// The same inputs give the same digest: every layer is a tar with sorted
// entries, one modification time (SOURCE_DATE_EPOCH, the commit's time),
// numeric owners, gzip without names or times; the config's creation time
// is that epoch too.
//
//	imagebuild -config build/runner.image.json -var KOMPRESS_BIN=... \
//	  -debs DIR -lock build/debian.lock -epoch 1700000000 \
//	  -out out/images/runner -summary out/images/runner.json -sbom out/images/runner.spdx.json
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Config describes one image.
type Config struct {
	Repository string            `json:"repository"`
	Tag        string            `json:"tag"`
	User       string            `json:"user"`
	WorkingDir string            `json:"workingDir"`
	Entrypoint []string          `json:"entrypoint"`
	Env        []string          `json:"env"`
	Labels     map[string]string `json:"labels"`
	Layers     []LayerSpec       `json:"layers"`
}

// LayerSpec is one layer: what changes together (the OS files, a library,
// the binary) goes into one, so an image of a new commit shares the others.
type LayerSpec struct {
	Comment string `json:"comment"`
	// Base adds /etc/passwd and /etc/group (root and the nonroot user),
	// /tmp and the user's home.
	Base *BaseSpec `json:"base,omitempty"`
	// Debs are Debian packages, each pinned in the lock file, and the
	// files of each the image keeps.
	Debs []DebSpec `json:"debs,omitempty"`
	// CABundle writes /etc/ssl/certs/ca-certificates.crt from the
	// ca-certificates package of Debs.
	CABundle bool       `json:"caBundle,omitempty"`
	Files    []FileSpec `json:"files,omitempty"`
}

type BaseSpec struct {
	User string `json:"user"`
	UID  int    `json:"uid"`
	Home string `json:"home"`
}

type DebSpec struct {
	Package string   `json:"package"`
	Keep    []string `json:"keep"`
}

type FileSpec struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Mode string `json:"mode"`
	// Package names what the file comes from for the SBOM, when it is
	// not a Go binary (whose modules are read from it).
	Package *PackageSpec `json:"package,omitempty"`
}

type PackageSpec struct {
	Name     string `json:"name"`
	Version  string `json:"version"`
	PURL     string `json:"purl"`
	License  string `json:"license"`
	Homepage string `json:"homepage"`
}

// Summary is what make images prints and the tests and the chart read.
type Summary struct {
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Digest is the image manifest's: pull and pin by it.
	Digest       string `json:"digest"`
	ConfigDigest string `json:"configDigest"`
	// CompressedBytes is what a registry stores and a node pulls: the
	// manifest, the config and the gzipped layers.
	CompressedBytes int64 `json:"compressedBytes"`
	// UncompressedBytes is the unpacked file system (layer tars).
	UncompressedBytes int64          `json:"uncompressedBytes"`
	Layers            []LayerSummary `json:"layers"`
}

type LayerSummary struct {
	Comment           string `json:"comment"`
	Digest            string `json:"digest"`
	CompressedBytes   int64  `json:"compressedBytes"`
	UncompressedBytes int64  `json:"uncompressedBytes"`
}

type varFlags map[string]string

func (v varFlags) String() string { return "" }
func (v varFlags) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("-var %q: want KEY=VALUE", s)
	}
	v[k] = val
	return nil
}

func main() {
	vars := varFlags{}
	var o options
	flag.StringVar(&o.config, "config", "", "image description (JSON)")
	flag.Var(vars, "var", "KEY=VALUE replacing ${KEY} in the description (repeatable)")
	flag.StringVar(&o.debs, "debs", "", "folder holding the .deb files of the lock")
	flag.StringVar(&o.lock, "lock", "", "lock file: package version architecture sha256, one package a line")
	flag.Int64Var(&o.epoch, "epoch", 0, "time of every file and of the image (SOURCE_DATE_EPOCH)")
	flag.StringVar(&o.out, "out", "", "OCI image layout folder to write (replaced)")
	flag.StringVar(&o.summary, "summary", "", "summary JSON to write")
	flag.StringVar(&o.sbom, "sbom", "", "SPDX JSON to write")
	flag.Parse()
	o.vars = vars
	if o.config == "" || o.out == "" {
		fmt.Fprintln(os.Stderr, "imagebuild: -config and -out are required")
		os.Exit(2)
	}
	s, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s %s %s compressed, %s unpacked\n", s.Repository, s.Tag, s.Digest, mb(s.CompressedBytes), mb(s.UncompressedBytes))
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

type options struct {
	config, debs, lock, out, summary, sbom string
	epoch                                  int64
	vars                                   map[string]string
}

// loadConfig reads the description, replacing ${KEY} with -var values
// (JSON-escaped); an unknown ${KEY} is an error.
func loadConfig(file string, vars map[string]string) (*Config, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var missing []string
	text := os.Expand(string(raw), func(k string) string {
		v, ok := vars[k]
		if !ok {
			missing = append(missing, k)
			return ""
		}
		b, _ := json.Marshal(v)
		return string(b[1 : len(b)-1])
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: no -var for %s", file, strings.Join(missing, ", "))
	}
	var c Config
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if c.Repository == "" || c.Tag == "" || len(c.Layers) == 0 {
		return nil, fmt.Errorf("%s: repository, tag and layers are required", file)
	}
	return &c, nil
}

// lockEntry pins one Debian package.
type lockEntry struct{ version, arch, sha256 string }

func readLock(file string) (map[string]lockEntry, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out := map[string]lockEntry{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 {
			return nil, fmt.Errorf("%s:%d: want `package version architecture sha256`", file, i+1)
		}
		out[f[0]] = lockEntry{f[1], f[2], f[3]}
	}
	return out, nil
}

// debFile is where apt-get download puts a package version.
func debFile(dir, pkg string, e lockEntry) string {
	return filepath.Join(dir, fmt.Sprintf("%s_%s_%s.deb", pkg, strings.ReplaceAll(e.version, ":", "%3a"), e.arch))
}

func build(o options) (*Summary, error) {
	c, err := loadConfig(o.config, o.vars)
	if err != nil {
		return nil, err
	}
	mtime := time.Unix(o.epoch, 0).UTC()
	var lock map[string]lockEntry
	sb := newSBOM(c)
	var adds []mutate.Addendum
	var sum Summary
	for _, ls := range c.Layers {
		t := tree{}
		if ls.Base != nil {
			base(t, *ls.Base)
		}
		for _, ds := range ls.Debs {
			if lock == nil {
				if o.lock == "" || o.debs == "" {
					return nil, errors.New("the description has Debian packages: -lock and -debs are required")
				}
				if lock, err = readLock(o.lock); err != nil {
					return nil, err
				}
			}
			e, ok := lock[ds.Package]
			if !ok {
				return nil, fmt.Errorf("%s is not in %s", ds.Package, o.lock)
			}
			d, files, err := readDeb(debFile(o.debs, ds.Package, e))
			if err != nil {
				return nil, err
			}
			if d.SHA256 != e.sha256 || d.Package != ds.Package || d.Version != e.version {
				return nil, fmt.Errorf("%s: %s %s sha256 %s, the lock pins %s %s sha256 %s", d.File, d.Package, d.Version, d.SHA256, ds.Package, e.version, e.sha256)
			}
			kept, err := keepFiles(d, files, ds.Keep)
			if err != nil {
				return nil, err
			}
			for p, n := range kept {
				t[p] = n
			}
			if ls.CABundle && ds.Package == "ca-certificates" {
				bundle := caBundle(files)
				if len(bundle) == 0 {
					return nil, errors.New("ca-certificates holds no certificates")
				}
				t.file("/etc/ssl/certs/ca-certificates.crt", bundle, 0o644)
				d.Files = append(d.Files, "/etc/ssl/certs/ca-certificates.crt")
			}
			sb.addDeb(d)
		}
		if ls.CABundle && t["/etc/ssl/certs/ca-certificates.crt"] == nil {
			return nil, errors.New("caBundle without the ca-certificates package in the same layer")
		}
		for _, f := range ls.Files {
			mode, err := strconv.ParseInt(f.Mode, 8, 64)
			if err != nil || f.Src == "" || f.Dst == "" {
				return nil, fmt.Errorf("file %+v: src, dst and an octal mode are required", f)
			}
			if _, err := os.Stat(f.Src); err != nil {
				return nil, err
			}
			t.fileFrom(f.Dst, f.Src, mode)
			if err := sb.addFile(f); err != nil {
				return nil, err
			}
		}
		gz, err := t.gzipped(mtime)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(gz)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, err
		}
		digest, err := layer.Digest()
		if err != nil {
			return nil, err
		}
		raw, err := uncompressedSize(layer)
		if err != nil {
			return nil, err
		}
		sum.Layers = append(sum.Layers, LayerSummary{Comment: ls.Comment, Digest: digest.String(), CompressedBytes: int64(len(gz)), UncompressedBytes: raw})
		sum.UncompressedBytes += raw
		sum.CompressedBytes += int64(len(gz))
		adds = append(adds, mutate.Addendum{
			Layer:     layer,
			MediaType: types.OCILayer,
			History:   v1.History{Created: v1.Time{Time: mtime}, CreatedBy: ls.Comment, Comment: "kompress imagebuild"},
		})
	}

	labels := map[string]string{}
	for k, v := range c.Labels {
		labels[k] = v
	}
	cfg := &v1.ConfigFile{
		Architecture: "amd64", OS: "linux", Created: v1.Time{Time: mtime},
		Config: v1.Config{
			User: c.User, WorkingDir: c.WorkingDir, Entrypoint: c.Entrypoint, Env: c.Env, Labels: labels,
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	if img, err = mutate.Append(img, adds...); err != nil {
		return nil, err
	}

	if err := os.RemoveAll(o.out); err != nil {
		return nil, err
	}
	p, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return nil, err
	}
	ref := c.Repository + ":" + c.Tag
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		// ctr images import names the image by the first; the OCI
		// convention is the tag alone in the second.
		"io.containerd.image.name":          ref,
		"org.opencontainers.image.ref.name": c.Tag,
	})); err != nil {
		return nil, err
	}

	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	sum.Repository, sum.Tag, sum.Digest, sum.ConfigDigest = c.Repository, c.Tag, digest.String(), cfgName.String()
	sum.CompressedBytes += int64(len(rawManifest) + len(rawCfg))
	if o.summary != "" {
		if err := writeJSON(o.summary, sum); err != nil {
			return nil, err
		}
	}
	if o.sbom != "" {
		if err := writeJSON(o.sbom, sb.document(digest.String(), mtime)); err != nil {
			return nil, err
		}
	}
	return &sum, nil
}

func uncompressedSize(l v1.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// base writes the user database and the directories every image has:
// root and the nonroot user (no shell, no password), /tmp (1777) and the
// user's home, owned by the user (the image's WORKDIR).
func base(t tree, b BaseSpec) {
	t.file("/etc/passwd", []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\n%s:x:%d:%d:%s:%s:/sbin/nologin\n", b.User, b.UID, b.UID, b.User, b.Home)), 0o644)
	t.file("/etc/group", []byte(fmt.Sprintf("root:x:0:\n%s:x:%d:\n", b.User, b.UID)), 0o644)
	t.dir("/tmp", 0o1777, 0, 0)
	t.dir("/root", 0o700, 0, 0)
	t.dir(b.Home, 0o700, b.UID, b.UID)
}

func writeJSON(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}
