package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"
)

// node is one file system entry of a layer.
type node struct {
	typ      byte // tar.TypeDir, tar.TypeReg or tar.TypeSymlink
	mode     int64
	uid, gid int
	link     string // symlink target
	data     []byte // a file's content, if held in memory
	src      string // else the file it is read from
}

// tree is a layer's file system: clean absolute paths to entries. Written
// as a tar, every entry has the same modification time, no user or group
// names, and the entries come in byte order of their paths, with every
// parent directory before its children: the same inputs give the same
// bytes, whatever the build machine's file times, umask and users.
type tree map[string]*node

func clean(p string) string {
	return path.Clean("/" + strings.TrimPrefix(p, "./"))
}

func (t tree) dir(p string, mode int64, uid, gid int) {
	t[clean(p)] = &node{typ: tar.TypeDir, mode: mode, uid: uid, gid: gid}
}

func (t tree) file(p string, data []byte, mode int64) {
	t[clean(p)] = &node{typ: tar.TypeReg, mode: mode, data: data}
}

func (t tree) fileFrom(p, src string, mode int64) {
	t[clean(p)] = &node{typ: tar.TypeReg, mode: mode, src: src}
}

func (t tree) symlink(p, target string) {
	t[clean(p)] = &node{typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// size is the bytes of the files (not the tar headers).
func (t tree) size() (int64, error) {
	var n int64
	for _, e := range t {
		if e.typ != tar.TypeReg {
			continue
		}
		if e.src == "" {
			n += int64(len(e.data))
			continue
		}
		fi, err := os.Stat(e.src)
		if err != nil {
			return 0, err
		}
		n += fi.Size()
	}
	return n, nil
}

// tar writes the tree; directories nobody declared are 0755 root:root.
func (t tree) tar(w io.Writer, mtime time.Time) error {
	all := map[string]*node{}
	for p, e := range t {
		all[p] = e
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if _, ok := t[d]; !ok {
				all[d] = &node{typ: tar.TypeDir, mode: 0o755}
			} else if t[d].typ != tar.TypeDir {
				return fmt.Errorf("%s is inside %s, which is not a directory", p, d)
			}
		}
	}
	paths := make([]string, 0, len(all))
	for p := range all {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	tw := tar.NewWriter(w)
	for _, p := range paths {
		e := all[p]
		h := &tar.Header{
			Typeflag: e.typ, Name: strings.TrimPrefix(p, "/"), Mode: e.mode, Uid: e.uid, Gid: e.gid,
			ModTime: mtime, Format: tar.FormatPAX,
		}
		var body io.Reader
		switch e.typ {
		case tar.TypeDir:
			h.Name += "/"
		case tar.TypeSymlink:
			h.Linkname = e.link
		case tar.TypeReg:
			if e.src != "" {
				f, err := os.Open(e.src)
				if err != nil {
					return err
				}
				defer f.Close()
				fi, err := f.Stat()
				if err != nil {
					return err
				}
				h.Size, body = fi.Size(), f
			} else {
				h.Size, body = int64(len(e.data)), bytes.NewReader(e.data)
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if body != nil {
			if n, err := io.Copy(tw, body); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			} else if n != h.Size {
				return fmt.Errorf("%s changed while it was read", p)
			}
		}
	}
	return tw.Close()
}

// gzipped is the tree as a gzip-compressed tar. compress/gzip writes no
// name and no time in its header: the bytes depend on the tar only.
func (t tree) gzipped(mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if err := t.tar(zw, mtime); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
