package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
)

// deb is a Debian package as the SBOM records it.
type deb struct {
	Package, Version, Architecture, Source, Homepage string
	File, SHA256                                     string
	// Files are the paths of the package the image keeps.
	Files []string
}

// readDeb reads a .deb's control fields and its files (through dpkg-deb,
// so any of Debian's compressions works). Hard links become copies.
func readDeb(file string) (*deb, map[string]*node, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(raw)
	d := &deb{File: path.Base(file), SHA256: hex.EncodeToString(sum[:])}
	out, err := exec.Command("dpkg-deb", "-f", file, "Package", "Version", "Architecture", "Source", "Homepage").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("dpkg-deb -f %s: %w", file, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "Package":
			d.Package = v
		case "Version":
			d.Version = v
		case "Architecture":
			d.Architecture = v
		case "Source":
			d.Source, _, _ = strings.Cut(v, " ")
		case "Homepage":
			d.Homepage = v
		}
	}
	if d.Package == "" || d.Version == "" {
		return nil, nil, fmt.Errorf("%s: no Package or Version field", file)
	}
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	tarData, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", file, err, stderr.String())
	}
	files := map[string]*node{}
	tr := tar.NewReader(bytes.NewReader(tarData))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		p := clean(h.Name)
		switch h.Typeflag {
		case tar.TypeDir:
			files[p] = &node{typ: tar.TypeDir, mode: h.Mode & 0o7777}
		case tar.TypeSymlink:
			files[p] = &node{typ: tar.TypeSymlink, mode: 0o777, link: h.Linkname}
		case tar.TypeReg:
			data, err := io.ReadAll(tr)
			if err != nil {
				return nil, nil, err
			}
			files[p] = &node{typ: tar.TypeReg, mode: h.Mode & 0o7777, data: data}
		case tar.TypeLink:
			target, ok := files[clean(h.Linkname)]
			if !ok {
				return nil, nil, fmt.Errorf("%s: hard link %s to %s, not seen before", file, p, h.Linkname)
			}
			c := *target
			files[p] = &c
		}
	}
	return d, files, nil
}

// keepFiles selects a package's files the image needs: the paths matching
// one of the patterns (path.Match, on absolute paths), the files their
// symlinks point to within the package, and the package's copyright file
// (its licence, which must travel with the binaries).
func keepFiles(d *deb, files map[string]*node, patterns []string) (map[string]*node, error) {
	kept := map[string]*node{}
	var add func(p string, depth int) error
	add = func(p string, depth int) error {
		e, ok := files[p]
		if !ok {
			return fmt.Errorf("%s has no %s", d.File, p)
		}
		if depth > 8 {
			return fmt.Errorf("%s: symlink loop at %s", d.File, p)
		}
		kept[p] = e
		if e.typ == tar.TypeSymlink {
			target := e.link
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			if _, ok := files[clean(target)]; ok {
				return add(clean(target), depth+1)
			}
		}
		return nil
	}
	for _, pat := range patterns {
		if _, err := path.Match(pat, "/"); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pat, err)
		}
	}
	for p, e := range files {
		if e.typ == tar.TypeDir {
			continue
		}
		for _, pat := range patterns {
			if ok, _ := path.Match(pat, p); ok {
				if err := add(p, 0); err != nil {
					return nil, err
				}
			}
		}
	}
	copyright := "/usr/share/doc/" + d.Package + "/copyright"
	if _, ok := files[copyright]; ok {
		kept[copyright] = files[copyright]
	}
	d.Files = d.Files[:0]
	for p := range kept {
		d.Files = append(d.Files, p)
	}
	sort.Strings(d.Files)
	return kept, nil
}

// caBundle concatenates the certificates of the ca-certificates package in
// path order: /etc/ssl/certs/ca-certificates.crt, as update-ca-certificates
// would write it with every certificate enabled.
func caBundle(files map[string]*node) []byte {
	var paths []string
	for p, e := range files {
		if e.typ == tar.TypeReg && strings.HasPrefix(p, "/usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt") {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	var b bytes.Buffer
	for _, p := range paths {
		data := files[p].data
		b.Write(data)
		if len(data) > 0 && data[len(data)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}
