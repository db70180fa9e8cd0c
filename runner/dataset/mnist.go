package dataset

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// MNIST files. The 1k file is committed under config/samples/data; the
// others are built into the cache by `make data` (hack/data.sh).
const (
	MNISTTest1k   = "mnist-test-1k.npz"   // first 1,000 test images
	MNISTTest10k  = "mnist-test-10k.npz"  // the 10,000 test images
	MNISTTrain60k = "mnist-train-60k.npz" // the 60,000 training images
)

// MNISTPath finds an MNIST .npz file: in $KOMPRESS_DATA, then in the data
// folder of the cache ($KOMPRESS_CACHE, else $XDG_CACHE_HOME/kompress or
// ~/.cache/kompress, as hack/tools.sh), then in the checkout's
// config/samples/data (which holds the 1k file). The error says how to
// build the file.
func MNISTPath(name string) (string, error) {
	dirs := dataDirs()
	for _, dir := range dirs {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("MNIST file %s not found in %s: run `make data` (hack/data.sh) to build it, or point KOMPRESS_DATA at a folder holding it",
		name, strings.Join(dirs, ", "))
}

func dataDirs() []string {
	var dirs []string
	if d := os.Getenv("KOMPRESS_DATA"); d != "" {
		dirs = append(dirs, d)
	}
	if c := cacheDir(); c != "" {
		dirs = append(dirs, filepath.Join(c, "data"))
	}
	// The checkout holding this source file, when running from source
	// (tests); a binary built with -trimpath has no such path.
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		dirs = append(dirs, filepath.Join(filepath.Dir(file), "..", "..", "config", "samples", "data"))
	}
	return dirs
}

func cacheDir() string {
	if c := os.Getenv("KOMPRESS_CACHE"); c != "" {
		return c
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "kompress")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".cache", "kompress")
	}
	return ""
}
