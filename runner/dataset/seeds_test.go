package dataset_test

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/x448/float16"

	"github.com/kompress/kompress/internal/fuzzseeds"
	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/dataset/datasettest"
)

// maxCorpusBytes bounds the committed fuzz corpora.
const maxCorpusBytes = 512 << 10

// TestFuzzSeeds keeps the committed seed corpora of FuzzNPZ and FuzzNPY
// in step with the code that builds them: every crafted file, the
// numpy-made fixtures, the first MNIST images, an array of every element
// type; FuzzNPY gets each of their entries. Run with -update-crafted to
// rewrite them. Files the fuzzer added (crashers, named by their hash)
// are left alone.
func TestFuzzSeeds(t *testing.T) {
	want := map[string][]byte{}
	for target, seeds := range fuzzSeeds(t) {
		for name, data := range seeds {
			want[filepath.Join("testdata", "fuzz", target, "seed-"+name)] = fuzzseeds.CorpusFile(data)
		}
	}
	have, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "seed-*"))
	fuzzseeds.Sync(t, want, have, *updateCrafted, "go test ./runner/dataset -run 'TestFuzzSeeds|TestCraftedFiles' -update-crafted", maxCorpusBytes)
}

// fuzzSeeds returns the seeds of each fuzz target, by name.
func fuzzSeeds(t *testing.T) map[string]map[string][]byte {
	files := map[string][]byte{}
	for _, c := range datasettest.Files() {
		files["crafted-"+c.Name] = c.Data
	}
	for _, name := range []string{"numpy-savez.npz", "numpy-compressed-be.npz", "numpy-nolabels.npz"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	// The first three MNIST test images, as the sample stores them.
	p, err := dataset.MNISTPath(dataset.MNISTTest1k)
	if err != nil {
		t.Fatal(err)
	}
	mnist, err := dataset.LoadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	head := mnist.Take(3)
	x, _ := head.XArray()
	files["mnist-3"] = npz(t, x, dataset.Array{Name: "y", Shape: []int{3}, Data: head.Labels})
	files["every-dtype"] = npz(t,
		dataset.Array{Name: "b", Shape: []int{2}, Data: []bool{true, false}},
		dataset.Array{Name: "u8", Shape: []int{2, 1}, Data: []uint8{0, 255}},
		dataset.Array{Name: "i8", Shape: []int{2}, Data: []int8{-128, 127}},
		dataset.Array{Name: "u16", Shape: []int{1}, Data: []uint16{65535}},
		dataset.Array{Name: "i16", Shape: []int{1}, Data: []int16{-32768}},
		dataset.Array{Name: "u32", Shape: []int{1}, Data: []uint32{1 << 31}},
		dataset.Array{Name: "i32", Shape: []int{1}, Data: []int32{-1 << 31}},
		dataset.Array{Name: "u64", Shape: []int{1}, Data: []uint64{1 << 63}},
		dataset.Array{Name: "i64", Shape: []int{1}, Data: []int64{-1 << 63}},
		dataset.Array{Name: "f16", Shape: []int{1}, Data: []float16.Float16{float16.Fromfloat32(-0.5)}},
		dataset.Array{Name: "x", Shape: []int{2, 2}, Data: []float32{1.5, -2, 0, 1e-30}},
		dataset.Array{Name: "f64", Shape: []int{}, Data: []float64{3.25}},
		dataset.Array{Name: "empty", Shape: []int{0, 3}, Data: []float32{}},
	)
	entries := map[string][]byte{}
	for name, data := range files {
		z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, f := range z.File {
			rc, err := f.Open()
			if err != nil {
				continue // a crafted entry the archive itself refuses
			}
			b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
			rc.Close()
			entries[name+"-"+f.Name] = b
		}
	}
	return map[string]map[string][]byte{"FuzzNPZ": files, "FuzzNPY": entries}
}

func npz(t *testing.T, arrays ...dataset.Array) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := dataset.WriteNPZ(&b, arrays...); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
