// Command craftgen writes the crafted .npz datasets of issue 11
// (runner/dataset/datasettest) into a folder: the small ones committed
// under runner/dataset/testdata/crafted and the deflate bombs, which are
// megabytes and built on demand. hack/reliability.sh runs it to measure
// what kompress does with each.
//
//	go run ./hack/craftgen DIR
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kompress/kompress/runner/dataset/datasettest"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: craftgen DIR")
		os.Exit(64)
	}
	dir := os.Args[1]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "craftgen:", err)
		os.Exit(1)
	}
	for _, c := range append(datasettest.Files(), datasettest.Bombs()...) {
		if err := os.WriteFile(filepath.Join(dir, c.String()), c.Data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "craftgen:", err)
			os.Exit(1)
		}
	}
}
