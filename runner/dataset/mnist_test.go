package dataset

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mnist-8's input, as the ONNX model declares it.
var mnist8Input = Input{Name: "Input3", ElemType: Float32, Shape: []int64{1, 1, 28, 28}}

// checkMNIST asserts what any slice of MNIST taken from the start of a set
// must look like.
func checkMNIST(t *testing.T, d *Dataset, n int) {
	t.Helper()
	if diff := cmp.Diff([]int{n, 1, 28, 28}, d.Shape); diff != "" {
		t.Fatalf("shape (-want +got):\n%s", diff)
	}
	x, ok := d.XArray()
	pixels, isU8 := x.Data.([]uint8)
	if !ok || !isU8 || d.X != nil {
		t.Fatalf("x is %T (X has %d values); want the uint8 pixels as stored, not copied to float32", x.Data, len(d.X))
	}
	if len(pixels) != n*784 || len(d.Labels) != n {
		t.Fatalf("%d values and %d labels for %d images", len(pixels), len(d.Labels), n)
	}
	lo, hi := pixels[0], pixels[0]
	for _, v := range pixels {
		lo, hi = min(lo, v), max(hi, v)
	}
	if lo != 0 || hi != 255 {
		t.Errorf("pixels range over [%v, %v], want raw [0, 255]", lo, hi)
	}
	counts := make([]int, 10)
	for _, l := range d.Labels {
		if l < 0 || l > 9 {
			t.Fatalf("label %d is not a digit", l)
		}
		counts[l]++
	}
	// MNIST is roughly balanced: every digit is 7%-14% of any large slice.
	for digit, c := range counts {
		if f := float64(c) / float64(n); f < 0.07 || f > 0.14 {
			t.Errorf("digit %d is %.1f%% of the labels; counts %v", digit, 100*f, counts)
		}
	}
	if _, err := d.Fit(mnist8Input); err != nil {
		t.Errorf("does not fit mnist-8: %v", err)
	}
}

func TestMNISTSample(t *testing.T) {
	p, err := MNISTPath(MNISTTest1k)
	if err != nil {
		t.Fatal(err)
	}
	d, err := LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	checkMNIST(t, d, 1000)
	// The first test images are a 7, a 2, a 1, a 0, a 4 ...
	if diff := cmp.Diff([]int64{7, 2, 1, 0, 4, 1, 4, 9, 5, 9}, d.Labels[:10]); diff != "" {
		t.Errorf("first labels (-want +got):\n%s", diff)
	}
	// MNIST centres each digit by its centre of mass: the first image's
	// ink balances near the middle of the 28x28 frame.
	first := d.Sample(0)
	var ink, rows, cols float32
	for r := range 28 {
		for c := range 28 {
			v := first[r*28+c]
			ink += v
			rows += float32(r) * v
			cols += float32(c) * v
		}
	}
	if cr, cc := rows/ink, cols/ink; ink < 50*255 || cr < 13 || cr > 15.5 || cc < 13 || cc > 15.5 {
		t.Errorf("first image: ink %v centred at (%.1f, %.1f); want a digit centred near (14, 14)", ink, cr, cc)
	}
}

// TestMNISTFull loads the full sets from the cache (`make data`) and
// reports how long the 60,000-image training set takes to load.
func TestMNISTFull(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the full MNIST sets: run `make data`")
	}
	small, err := LoadFile(mustMNIST(t, MNISTTest1k))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		n    int
	}{{MNISTTest10k, 10000}, {MNISTTrain60k, 60000}} {
		t.Run(tt.name, func(t *testing.T) {
			p := mustMNIST(t, tt.name)
			st, _ := os.Stat(p)
			start := time.Now()
			d, err := LoadFile(p)
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			x, _ := d.XArray()
			t.Logf("%s: %d images (%.1f MB file, %.0f MB of %s) loaded in %v",
				filepath.Base(p), d.Len(), float64(st.Size())/1e6, float64(len(x.Data.([]uint8)))/1e6, d.XType, took.Round(time.Millisecond))
			checkMNIST(t, d, tt.n)
			if tt.name == MNISTTest10k {
				// The committed 1k file is the head of the test set.
				head := d.Take(1000)
				sx, _ := small.XArray()
				hx, _ := head.XArray()
				if !slices.Equal(small.Shape, head.Shape) || !slices.Equal(sx.Data.([]uint8), hx.Data.([]uint8)) || !slices.Equal(small.Labels, head.Labels) {
					t.Errorf("%s is not the first 1000 images of %s", MNISTTest1k, tt.name)
				}
			}
		})
	}
}

func mustMNIST(t *testing.T, name string) string {
	t.Helper()
	p, err := MNISTPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMNISTPath(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KOMPRESS_DATA", dir)
	t.Setenv("KOMPRESS_CACHE", filepath.Join(dir, "cache"))
	if err := os.WriteFile(filepath.Join(dir, MNISTTrain60k), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := MNISTPath(MNISTTrain60k)
	if err != nil || got != filepath.Join(dir, MNISTTrain60k) {
		t.Errorf("MNISTPath found %q, %v; want the file in KOMPRESS_DATA", got, err)
	}
	_, err = MNISTPath("mnist-nope.npz")
	for _, s := range []string{"mnist-nope.npz", "make data", dir, filepath.Join(dir, "cache", "data")} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("error %v does not mention %q", err, s)
		}
	}
	// The committed sample is found without any environment.
	if p, err := MNISTPath(MNISTTest1k); err != nil || !strings.HasSuffix(p, filepath.Join("config", "samples", "data", MNISTTest1k)) {
		t.Errorf("MNISTPath(%s) = %q, %v; want the committed sample", MNISTTest1k, p, err)
	}
}
