package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The same tree gives the same bytes however it was filled, with parents
// before children, one time, numeric owners and the declared modes.
func TestTreeIsReproducible(t *testing.T) {
	src := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(src, []byte("binary"), 0o600); err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0)
	build := func(order []int) []byte {
		tr := tree{}
		steps := []func(){
			func() { tr.fileFrom("/usr/local/bin/kompress", src, 0o755) },
			func() { tr.file("/etc/passwd", []byte("root:x:0:0::/root:/sbin/nologin\n"), 0o644) },
			func() { tr.symlink("/lib64/ld.so", "/lib/ld.so") },
			func() { tr.dir("/home/nonroot", 0o700, 65532, 65532) },
		}
		for _, i := range order {
			steps[i]()
		}
		gz, err := tr.gzipped(mtime)
		if err != nil {
			t.Fatal(err)
		}
		return gz
	}
	a, b := build([]int{0, 1, 2, 3}), build([]int{3, 2, 1, 0})
	if !bytes.Equal(a, b) {
		t.Fatal("the same tree filled in another order gives other bytes")
	}
	tr := tree{}
	tr.fileFrom("/usr/local/bin/kompress", src, 0o755)
	tr.dir("/home/nonroot", 0o700, 65532, 65532)
	var buf bytes.Buffer
	if err := tr.tar(&buf, mtime); err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(&buf)
	var names []string
	for {
		h, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if !h.ModTime.Equal(mtime) || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: time %s owner names %q %q", h.Name, h.ModTime, h.Uname, h.Gname)
		}
		if h.Name == "home/nonroot/" && (h.Uid != 65532 || h.Mode != 0o700) {
			t.Errorf("home: uid %d mode %o", h.Uid, h.Mode)
		}
		if h.Name == "usr/local/bin/kompress" && h.Mode != 0o755 {
			t.Errorf("binary mode %o, want the declared 755 (not the source's 600)", h.Mode)
		}
	}
	want := []string{"home/", "home/nonroot/", "usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/kompress"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}
}

// A kept symlink brings its target; the copyright file always comes.
func TestKeepFilesFollowsSymlinks(t *testing.T) {
	d := &deb{Package: "libstdc++6", File: "x.deb"}
	files := map[string]*node{
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6":       {typ: tar.TypeSymlink, link: "libstdc++.so.6.0.30"},
		"/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30":  {typ: tar.TypeReg, data: []byte("elf")},
		"/usr/lib/x86_64-linux-gnu/libstdc++fs.a":        {typ: tar.TypeReg, data: []byte("ar")},
		"/usr/share/doc/libstdc++6/copyright":            {typ: tar.TypeReg, data: []byte("GPL")},
		"/usr/share/gcc/python/libstdcxx/v6/printers.py": {typ: tar.TypeReg, data: []byte("py")},
	}
	kept, err := keepFiles(d, files, []string{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.30", "/usr/share/doc/libstdc++6/copyright"} {
		if kept[p] == nil {
			t.Errorf("%s not kept", p)
		}
	}
	if len(kept) != 3 || len(d.Files) != 3 {
		t.Errorf("kept %d files (%v), want 3", len(kept), d.Files)
	}
}
