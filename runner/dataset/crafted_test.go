package dataset_test

import (
	"archive/zip"
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/dataset/datasettest"
	"github.com/kompress/kompress/runner/fault"
)

var updateCrafted = flag.Bool("update-crafted", false, "rewrite testdata/crafted/*.npz and the fuzz seed corpora (testdata/fuzz/*/seed-*)")

// allocBound is the most a test lets reading a crafted file allocate:
// a few KiB of zip and header buffers, far below anything its sizes
// claim (the smallest claim is 4 GiB) or the limits, so an allocation
// sized from a claim before the check fails the test (or the process)
// instead of passing.
const allocBound = 256 << 10

// allocated runs f and returns the bytes it allocated.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// checkRefused asserts err is bad input naming the file, the entry and
// what the case wants.
func checkRefused(t *testing.T, c datasettest.Crafted, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted")
	}
	if !fault.IsBadInput(err) {
		t.Errorf("error does not wrap fault.ErrBadInput: %v", err)
	}
	prefix := c.String() + `: entry "` + c.Entry + `": `
	if !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error %q does not start with %q", err, prefix)
	}
	for _, w := range c.Want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}

// TestCraftedFiles reads each crafted dataset of issue 11 (the committed
// files, kept in step with the code that builds them): every one but the
// valid one is refused as bad input naming the file, the entry and what
// was expected, with no panic and allocating only a few KiB.
func TestCraftedFiles(t *testing.T) {
	dir := filepath.Join("testdata", "crafted")
	want := map[string]bool{}
	for _, c := range datasettest.Files() {
		path := filepath.Join(dir, c.String())
		want[path] = true
		if *updateCrafted {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, c.Data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(c.Name, func(t *testing.T) {
			if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, c.Data) {
				t.Errorf("%s is missing or stale (%v): run go test ./runner/dataset -run TestCraftedFiles -update-crafted", path, err)
			}
			var err error
			if n := allocated(func() { _, err = dataset.Load(c.String(), c.Data) }); n > allocBound {
				t.Errorf("Load allocated %d bytes for a %d-byte file", n, len(c.Data))
			}
			if c.Want == nil {
				if err != nil {
					t.Fatalf("a valid file was refused: %v", err)
				}
				return
			}
			checkRefused(t, c, err)
		})
	}
	have, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, p := range have {
		if !want[p] {
			t.Errorf("%s is no longer generated: remove it, or run with -update-crafted", p)
		}
	}
}

// TestKeysInAnyOrder: a header whose keys come in another order (the
// format allows it; the old parser panicked) is read exactly.
func TestKeysInAnyOrder(t *testing.T) {
	var c datasettest.Crafted
	for _, f := range datasettest.Files() {
		if f.Name == "header-keys-reordered" {
			c = f
		}
	}
	d, err := dataset.Load(c.String(), c.Data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]dataset.Array{{Name: "x", Shape: []int{2, 2}, Data: []float32{0, 1, 2, 3}}}, d.Arrays); diff != "" {
		t.Errorf("arrays (-want +got):\n%s", diff)
	}
}

// TestBombs reads the deflate bombs at the default limits: each is
// refused from its header, before its gigabytes are inflated or
// allocated.
func TestBombs(t *testing.T) {
	for _, c := range datasettest.Bombs() {
		t.Run(c.Name, func(t *testing.T) {
			var err error
			if n := allocated(func() { _, err = dataset.Load(c.String(), c.Data) }); n > allocBound {
				t.Errorf("Load allocated %d bytes for a %d-byte file", n, len(c.Data))
			}
			checkRefused(t, c, err)
		})
	}
}

// TestBombIsTrue checks that a bomb is the valid archive it claims to
// be: it inflates to its declared size and checksum (a refusal must come
// from the limits, not from a broken file).
func TestBombIsTrue(t *testing.T) {
	const zeros = 3<<20 + 1234
	data := datasettest.Zip(datasettest.Bomb("x.npy", datasettest.Dict("|u1", "(2, 1573481)"), zeros))
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := z.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	if err != nil || uint64(n) != z.File[0].UncompressedSize64 {
		t.Fatalf("inflated %d bytes (%v), the entry declares %d", n, err, z.File[0].UncompressedSize64)
	}
	if len(data) > zeros/500 {
		t.Errorf("a bomb of %d zeros takes %d bytes; deflate should shrink it about 1000 times", zeros, len(data))
	}
	// Within the limits it loads, as uint8.
	d, err := dataset.Load("bomb.npz", data)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := d.XArray(); len(x.Data.([]uint8)) != zeros {
		t.Errorf("x holds %d values", len(x.Data.([]uint8)))
	}
}

// TestLimits lowers the limits: a bomb past them is refused before it is
// inflated (allocating a few KiB, let alone the limit or the claim);
// arrays are counted together; a file within them loads, allocating its
// arrays (and y's labels as int64) and little else.
func TestLimits(t *testing.T) {
	const mib = 1 << 20
	lim := dataset.Limits{MaxBytes: 4 * mib, MaxSamples: 1000}
	bomb := func(shape string, zeros int64) []byte {
		return datasettest.Zip(datasettest.Bomb("x.npy", datasettest.Dict("|u1", shape), zeros))
	}
	u8 := func(name, shape string, n int) datasettest.Entry {
		return datasettest.Entry{Name: name, Data: datasettest.V1(datasettest.Dict("|u1", shape), make([]byte, n)), Deflate: true}
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
		alloc   uint64 // the most reading it may allocate
	}{
		{"bytes", bomb("(16, 1048576)", 16*mib),
			`f.npz: entry "x.npy": shape [16 1048576] of uint8 needs 16777216 bytes, more than the 4194304 bytes a dataset may hold ($KOMPRESS_MAX_DATASET_BYTES sets it)`, allocBound},
		{"samples", bomb("(2000, 1024)", 2000*1024), `f.npz: entry "x.npy": shape [2000 1024]: 2000 samples along the first dim, more than the 1000 a dataset may hold`, allocBound},
		{"arrays together", datasettest.Zip(u8("x.npy", "(1000, 3072)", 3072000), u8("y.npy", "(1000,)", 1000), u8("z.npy", "(1, 1200000)", 1200000)),
			`f.npz: entry "z.npy": shape [1 1200000] of uint8 needs 1200000 bytes, which with the 3072000 bytes of the arrays before it is more than the 4194304 bytes`, 3072000 + allocBound},
		{"within", datasettest.Zip(u8("x.npy", "(1000, 3072)", 3072000), u8("y.npy", "(1000,)", 1000)), "", 3072000 + 9*1000 + allocBound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if n := allocated(func() { _, err = lim.Load("f.npz", tc.data) }); n > tc.alloc {
				t.Errorf("reading it allocated %d bytes, more than %d", n, tc.alloc)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !fault.IsBadInput(err) {
				t.Fatalf("error %v, want bad input saying %q", err, tc.wantErr)
			}
		})
	}
}

// TestNoFloat32Copy: a uint8 x is held as read, one byte a value: the
// old reader kept a float32 copy too (five times the data; 5.3 GB for
// the 1 MB bomb).
func TestNoFloat32Copy(t *testing.T) {
	const n = 4 << 20
	data := datasettest.Zip(datasettest.Entry{Name: "x.npy", Data: datasettest.V1(datasettest.Dict("|u1", "(4096, 1024)"), make([]byte, n)), Deflate: true})
	var d *dataset.Dataset
	var err error
	got := allocated(func() { d, err = dataset.Load("u8.npz", data) })
	if err != nil {
		t.Fatal(err)
	}
	if got > n+allocBound {
		t.Errorf("loading %d bytes of uint8 allocated %d bytes", n, got)
	}
	if d.X != nil || d.XType != "uint8" {
		t.Errorf("X holds %d values, XType %q: want no float32 copy of uint8 x", len(d.X), d.XType)
	}
}
