package dataset_test

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/kompress/kompress/runner/dataset"
	"github.com/kompress/kompress/runner/fault"
)

// The fuzz targets of the dataset reader. Their seed corpora are
// committed under testdata/fuzz/<target>/ (TestFuzzSeeds keeps the seed-*
// files in step with the crafted files and the numpy-made fixtures) and
// run with every `go test`; hack/fuzz.sh fuzzes each target for a fixed
// time in CI. A crasher the fuzzer finds is written next to them: fix the
// bug and commit the file.
//
// Both read within small limits (1 MiB of arrays, 4,096 samples), so an
// input that claims a big array costs the fuzzer nothing while still
// crossing them.

var fuzzLimits = dataset.Limits{MaxBytes: 1 << 20, MaxSamples: 1 << 12}

// FuzzNPZ reads .npz bytes: Load either refuses them as bad input, or
// returns a dataset within the limits whose every array holds exactly
// what its shape says, and which writes and reads back the same.
func FuzzNPZ(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := fuzzLimits.Load("fuzz.npz", data)
		if err != nil {
			if !fault.IsBadInput(err) {
				t.Fatalf("error does not wrap fault.ErrBadInput: %v", err)
			}
			return
		}
		var total int64
		for _, a := range d.Arrays {
			total += checkArray(t, a)
		}
		if d.Labels != nil {
			if int64(len(d.Labels)) > fuzzLimits.MaxSamples {
				t.Fatalf("%d labels, more than the %d samples allowed", len(d.Labels), fuzzLimits.MaxSamples)
			}
			total += int64(len(d.Labels)) // at least a byte each as stored
		}
		if total > fuzzLimits.MaxBytes {
			t.Fatalf("the arrays hold %d bytes, more than the %d allowed", total, fuzzLimits.MaxBytes)
		}
		if d.Shape != nil {
			x, ok := d.XArray()
			if !ok || !reflect.DeepEqual(x.Shape, d.Shape) || d.X != nil && len(d.X) != d.Len()*d.SampleSize() {
				t.Fatalf("x: shape %v, array %v (%v), X of %d values", d.Shape, x.Shape, ok, len(d.X))
			}
			if n := d.Len(); n > 0 && len(d.Float32s(n-1, n)) != d.SampleSize() {
				t.Fatal("the last sample does not read as float32")
			}
		}
		var buf bytes.Buffer
		if err := dataset.WriteNPZ(&buf, d.Arrays...); err != nil {
			t.Fatalf("WriteNPZ of what Load accepted: %v", err)
		}
		back, err := dataset.ReadNPZ("back.npz", bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("reading back what WriteNPZ wrote: %v", err)
		}
		for i, a := range back {
			if !sameArray(t, a, d.Arrays[i]) {
				t.Fatalf("array %q changed in a write and read", a.Name)
			}
		}
	})
}

// FuzzNPY reads one .npy stream (an .npz entry): readNPY either refuses
// it as bad input, or returns an array of exactly the bytes its shape
// says, which writes and reads back the same.
func FuzzNPY(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := dataset.ReadNPY(data, fuzzLimits)
		if err != nil {
			return // readEntry wraps it as bad input with the file and the entry
		}
		if n := checkArray(t, a); n > fuzzLimits.MaxBytes || n > int64(len(data)) {
			t.Fatalf("a %d-byte stream gave %d bytes of array", len(data), n)
		}
		if !sameArray(t, a, a) {
			t.Fatal("the array does not write the same twice")
		}
		enc, err := dataset.WriteNPY(a)
		if err != nil {
			t.Fatalf("WriteNPY of what readNPY accepted: %v", err)
		}
		back, err := dataset.ReadNPY(enc, fuzzLimits)
		if err != nil {
			t.Fatalf("reading back what WriteNPY wrote: %v", err)
		}
		if !sameArray(t, a, back) {
			t.Fatal("the array changed in a write and read")
		}
	})
}

// checkArray asserts the array's data has as many elements as its shape
// (all dims >= 0, the first within the samples limit) and returns its
// bytes.
func checkArray(t *testing.T, a dataset.Array) int64 {
	t.Helper()
	n := int64(1)
	for _, d := range a.Shape {
		if d < 0 {
			t.Fatalf("array %q: shape %v", a.Name, a.Shape)
		}
		n *= int64(d)
	}
	if len(a.Shape) > 0 && int64(a.Shape[0]) > fuzzLimits.MaxSamples {
		t.Fatalf("array %q: shape %v past the samples limit", a.Name, a.Shape)
	}
	v := reflect.ValueOf(a.Data)
	if v.Kind() != reflect.Slice || int64(v.Len()) != n {
		t.Fatalf("array %q: shape %v, data %T of %d", a.Name, a.Shape, a.Data, v.Len())
	}
	return n * int64(v.Type().Elem().Size())
}

// sameArray compares two arrays by their .npy encoding (NaNs included).
func sameArray(t *testing.T, a, b dataset.Array) bool {
	t.Helper()
	ea, err := dataset.WriteNPY(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := dataset.WriteNPY(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ea, eb) && a.Name == b.Name
}
